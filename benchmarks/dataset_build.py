"""Dataset build throughput per core, with and without the keystrokes and pointer tables, against a reference.

    python benchmarks/dataset_build.py [--events 1000000] [--sessions 20] [--people 10] [--repeat 2]
                                       [--engine dask --workers 2]

The stream imitates people at work: bursts of typing (with shift, backspace
and the odd hotkey), pointer moves between clicks, drags, scroll runs, app
switches with window titles and the screen size, idle gaps. Each session
belongs to one of ``--people`` people, so a release has a population to
anonymise against. Reading is excluded (the events are in memory, as after
``EventStore.read_events``). Builds measured in the same run, best of
``--repeat``:

* ``reference``: a minimal vectorised polars pipeline (sort, the focus in
  force, key presses grouped into typing runs by a 2 s gap, presses and
  scroll runs as rows, one Parquet file): what the figure would be for
  plain columnar work, with no state machine, redaction, pseudonyms or
  anonymisation. The ratio to it is the builder's overhead.
* ``actions only``: ``build_dataset`` (release) with the keystrokes and
  pointer stages given empty tables: the build as it was before those
  tables existed (the reduction still notes the modifiers held at each
  key_down for the keystrokes stage, a list append).
* ``internal``: every table, raw timings (``--internal``).
* ``release``: every table, anonymised (the default build).

"Per core": polars runs on one thread (``--threads``, POLARS_MAX_THREADS)
and the figure is events per CPU second of this process, so it depends
neither on how many cores the machine has nor on what else runs on them.
The release build's time is also split by stage (CPU seconds of each step
``build_dataset`` calls; the key presses are found inside ``keystrokes_frame``). Bytes per event: each table's files (Parquet and JSONL) over the input
events. With ``--engine dask`` the release is also built on a local Dask
cluster of ``--workers`` processes (started before the clock) and checked to
write the same bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

if __name__ == "__main__":  # before polars starts its thread pool
    _threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
    os.environ["POLARS_MAX_THREADS"] = _threads

import polars as pl
import pyarrow as pa

import deskcorder.dataset._build as _build_module
from deskcorder.dataset import TABLES, BuildOptions, build_dataset, build_dataset_distributed
from deskcorder.events import EVENT_SCHEMA
from deskcorder.privacy import Pseudonymizer

APPS = [("Code", "code", "main.py - project - Visual Studio Code"), ("XTerm", "xterm", "~/project"),
        ("Firefox", "firefox", "Pull request #42 - Mozilla Firefox"), ("Notes", "python3", "notes.txt")]
WORDS = "the quick brown fox jumps over a lazy dog while we ship the quarterly report on time".split()
SCREEN = (1920, 1080)
_STAGES_SKIPPED = ("keystrokes_frame", "pointer_frame")  # the actions-only build replaces these
# The steps build_dataset calls, in order, timed one by one (names in deskcorder.dataset._build).
_STAGES = ("prepare", "reduce_actions", "episodes_frame", "redact_runs", "keystrokes_frame", "pointer_frame",
           "_protect", "release_tables", "write_dataset")


def synthesise(n_events: int, n_sessions: int, seed: int = 7) -> pa.Table:
    rng = random.Random(seed)
    cols: dict[str, list] = {name: [] for name in EVENT_SCHEMA.names}
    per_session = n_events // n_sessions
    wall0 = time.time_ns()

    for s in range(n_sessions):
        session = f"{s:032x}"
        seq = 0
        t = 10**9
        x, y = 500, 400

        def add(kind: str, **fields: object) -> None:
            nonlocal seq
            row = {"session_id": session, "seq": seq, "t_mono_ns": t, "t_wall_ns": wall0 + t, "kind": kind, **fields}
            for name in EVENT_SCHEMA.names:
                cols[name].append(row.get(name))
            seq += 1

        while seq < per_session:
            app = rng.choice(APPS)
            t += rng.randint(200, 2000) * 10**6
            add("focus", app_class=app[0], app_process=app[1], window_title=app[2], screen_width=SCREEN[0],
                screen_height=SCREEN[1], window_x=0, window_y=24, window_width=SCREEN[0], window_height=SCREEN[1] - 24)
            for _ in range(rng.randint(3, 12)):
                r = rng.random()
                if r < 0.45:  # a typing burst
                    for ch in " ".join(rng.choices(WORDS, k=rng.randint(2, 8))):
                        t += rng.randint(60, 220) * 10**6
                        key = "space" if ch == " " else ch
                        add("key_down", key=key, char=ch, vk=ord(ch))
                        t += rng.randint(40, 110) * 10**6
                        add("key_up", key=key, char=ch, vk=ord(ch))
                    if rng.random() < 0.2:
                        add("key_down", key="ctrl_l")
                        add("key_down", key="s", char="s")
                        add("key_up", key="s", char="s")
                        add("key_up", key="ctrl_l")
                elif r < 0.85:  # moves, then a click or a drag
                    for _ in range(rng.randint(10, 60)):
                        t += 16 * 10**6
                        x, y = max(0, min(1919, x + rng.randint(-25, 25))), max(0, min(1079, y + rng.randint(-20, 20)))
                        add("move", x=x, y=y)
                    add("button_down", button="left", x=x, y=y)
                    if rng.random() < 0.2:
                        for _ in range(10):
                            t += 16 * 10**6
                            x += 12
                            add("move", x=x, y=y)
                    t += 90 * 10**6
                    add("button_up", button="left", x=x, y=y)
                else:  # a scroll run
                    for _ in range(rng.randint(2, 10)):
                        t += 40 * 10**6
                        add("scroll", x=x, y=y, dx=0, dy=rng.choice((-1, 1)))
            if rng.random() < 0.05:
                t += 60 * 10**9  # coffee: an idle gap
    return pa.Table.from_pydict(cols, schema=EVENT_SCHEMA)


def with_devices(events: pa.Table, n_people: int) -> tuple[pa.Table, dict[str, str]]:
    """Each session on its own device, the devices shared out among ``n_people`` people."""
    sessions = events.column("session_id").to_pylist()
    devices = [f"device-{int(s, 16):04d}" for s in sessions]
    owners = {d: f"person-{int(d[7:]) % n_people}" for d in set(devices)}
    return events.append_column("device_id", pa.array(devices, pa.string())), owners


def reference_pipeline(events: pa.Table, out: Path) -> int:
    """The plainest columnar way to actions: no state machine, no privacy. Returns the rows written."""
    df = pl.from_arrow(events).sort("session_id", "seq")
    kind, session, t = pl.col("kind"), pl.col("session_id"), pl.col("t_mono_ns")
    df = df.with_columns(app=pl.when(kind == "focus").then(pl.col("app_class")).forward_fill().over("session_id"))

    def runs(of_kind: str, gap_ns: int) -> pl.DataFrame:
        rows = df.filter(kind == of_kind)
        run = ((session != session.shift(1)) | (t.diff() > gap_ns)).fill_null(True).cum_sum()
        return rows.with_columns(run=run).group_by("run", maintain_order=True).agg(
            session_id=session.first(), app_class=pl.col("app").first(), kind=pl.lit(of_kind),
            t_start_mono_ns=t.first(), t_end_mono_ns=t.last(), x=pl.col("x").first(), y=pl.col("y").first(),
            dy=pl.col("dy").sum(), text=pl.col("char").str.join(""), event_seqs=pl.col("seq"))

    presses = df.filter(kind == "button_down").select(
        "session_id", app_class="app", kind=pl.lit("click"), t_start_mono_ns=t, t_end_mono_ns=t, x="x", y="y",
        dy=pl.lit(None, pl.Int32), text=pl.lit(None, pl.String), event_seqs=pl.concat_list("seq"))
    typed, scrolls = runs("key_down", 2 * 10**9).drop("run"), runs("scroll", 500 * 10**6).drop("run")
    actions = pl.concat([typed, presses, scrolls], how="vertical_relaxed").sort("session_id", "t_start_mono_ns")
    actions.write_parquet(out / "actions.parquet")
    return actions.height


@contextlib.contextmanager
def keystrokes_and_pointer_skipped(templates: dict[str, pl.DataFrame]) -> Iterator[None]:
    """The build's keystrokes and pointer stages return empty tables (of their real columns) instead."""
    real = {name: getattr(_build_module, name) for name in _STAGES_SKIPPED}
    for name in _STAGES_SKIPPED:
        setattr(_build_module, name, lambda *_args, _empty=templates[name], **_kw: _empty)
    try:
        yield
    finally:
        for name, function in real.items():
            setattr(_build_module, name, function)


def empty_templates(events: pa.Table, owners: dict[str, str]) -> dict[str, pl.DataFrame]:
    """Each skipped stage's output, emptied: taken from a small real build."""
    captured: dict[str, pl.DataFrame] = {}
    real = {name: getattr(_build_module, name) for name in _STAGES_SKIPPED}

    def keep(name: str) -> Callable[..., pl.DataFrame]:
        def run(*args: Any, **kwargs: Any) -> pl.DataFrame:
            captured[name] = real[name](*args, **kwargs).clear()
            return captured[name]
        return run

    for name in _STAGES_SKIPPED:
        setattr(_build_module, name, keep(name))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            build_dataset(events.slice(0, 20_000), Path(tmp) / "ds", BuildOptions(mode="internal"),
                          device_to_employee=owners)
    finally:
        for name, function in real.items():
            setattr(_build_module, name, function)
    return captured


@contextlib.contextmanager
def stage_clock(spent: dict[str, float]) -> Iterator[None]:
    """CPU seconds of each of the build's _STAGES, added to ``spent`` while the block runs."""
    real = {name: getattr(_build_module, name) for name in _STAGES}

    def clocked(name: str) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return real[name](*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.process_time() - start
        return run

    for name in _STAGES:
        setattr(_build_module, name, clocked(name))
    try:
        yield
    finally:
        for name, function in real.items():
            setattr(_build_module, name, function)


def timed(run: Callable[[Path], Any], repeat: int, root: Path, label: str) -> tuple[float, float, Path, Any]:
    """(wall s, CPU s, output folder, result) of the fastest of ``repeat`` runs (by CPU time)."""
    best: tuple[float, float, Path, Any] | None = None
    for i in range(repeat):
        out = root / f"{label}-{i}"
        out.mkdir(parents=True)
        wall, cpu = time.perf_counter(), time.process_time()
        result = run(out / "ds")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if best is None or cpu < best[1]:
            best = (wall, cpu, out / "ds", result)
    assert best is not None
    return best


def table_bytes(ds: Path) -> dict[str, dict[str, int]]:
    """Bytes of each table's files, by format."""
    return {name: {fmt: sum(f.stat().st_size for f in (ds / "data" / name).glob(f"*.{fmt}"))
                   for fmt in ("parquet", "jsonl")} for name in TABLES if (ds / "data" / name).is_dir()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--people", type=int, default=10, help="people the sessions' devices belong to")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each build; the fastest counts")
    parser.add_argument("--engine", choices=("local", "dask"), default="local")
    parser.add_argument("--workers", type=int, default=2, help="local Dask cluster processes (--engine dask)")
    parser.add_argument("--threads", type=int, default=1, help="polars threads (read before polars starts)")
    args = parser.parse_args()
    start = time.perf_counter()
    events, owners = with_devices(synthesise(args.events, args.sessions), args.people)
    n = events.num_rows
    print(f"synthesised {n:,} events in {args.sessions} sessions of {args.people} people "
          f"({time.perf_counter() - start:.1f} s, not counted)")
    root = Path(tempfile.mkdtemp(prefix="deskcorder-dataset-bench-"))
    key = Pseudonymizer.generate()  # one key for every build, so the local and dask files can be compared
    templates = empty_templates(events, owners)

    def build(mode: str) -> Callable[[Path], Any]:
        return lambda out: build_dataset(events, out, BuildOptions(mode=mode), pseudonymizer=key,
                                         device_to_employee=owners)

    def actions_only(out: Path) -> Any:
        with keystrokes_and_pointer_skipped(templates):
            return build("release")(out)

    def reference(out: Path) -> int:
        out.mkdir()
        return reference_pipeline(events, out)

    runs = {"reference": reference, "actions only": actions_only, "internal": build("internal"),
            "release": build("release")}
    results = {label: timed(run, args.repeat, root, label) for label, run in runs.items()}

    per_core = {label: n / cpu for label, (_, cpu, _, _) in results.items()}
    print(f"\n{'build':<13} {'wall s':>7} {'CPU s':>6} {'events/s':>10} {'events/s/core':>14} "
          f"{'vs reference':>13} {'vs actions only':>16}")
    for label, (wall, cpu, _, _) in results.items():
        print(f"{label:<13} {wall:7.2f} {cpu:6.2f} {n / wall:10,.0f} {per_core[label]:14,.0f} "
              f"{per_core[label] / per_core['reference']:13.2f} {per_core[label] / per_core['actions only']:16.2f}")

    spent: dict[str, float] = {}
    with stage_clock(spent), tempfile.TemporaryDirectory() as tmp:
        build("release")(Path(tmp) / "ds")
    total = sum(spent.values())
    print("\nrelease build by stage (CPU s): " + ", ".join(f"{name.strip('_')} {s:.2f}" for name, s in spent.items())
          + f"; total {total:.2f}")

    stats = results["release"][3]
    print(f"\nrelease: {stats.actions:,} actions, {stats.keystrokes:,} keystrokes, {stats.pointer_samples:,} "
          f"pointer samples in {stats.episodes:,} episodes; actions by kind: {stats.actions_by_kind}")
    print(f"reference: {results['reference'][3]:,} rows")
    print(f"\nbytes per input event, by table ({n:,} events)")
    print(f"{'build':<13} {'table':<11} {'rows':>9} {'parquet':>8} {'jsonl':>8}")
    for label in ("actions only", "internal", "release"):
        ds, st = results[label][2], results[label][3]
        rows = {"actions": st.actions, "episodes": st.episodes, "keystrokes": st.keystrokes,
                "pointer": st.pointer_samples}
        sizes = table_bytes(ds)
        for name, by_format in sizes.items():
            print(f"{label:<13} {name:<11} {rows[name]:9,d} {by_format['parquet'] / n:8.2f} {by_format['jsonl'] / n:8.2f}")
        total = sum(sum(b.values()) for b in sizes.values())
        print(f"{label:<13} {'all files':<11} {'':>9} {total / n:17.2f}")
    if args.engine == "dask":
        _compare_dask(events, owners, results["release"][2], results["release"][0], args.workers, key)


def _compare_dask(events: pa.Table, owners: dict[str, str], local_out: Path, local_s: float, workers: int,
                  key: Pseudonymizer) -> None:
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        started = time.perf_counter() - start
        out = local_out.parent / "ds-dask"
        start = time.perf_counter()
        build_dataset_distributed(events, out, BuildOptions(), client=client, pseudonymizer=key,
                                  device_to_employee=owners)
        took = time.perf_counter() - start
    same = all((local_out / f.relative_to(out)).read_bytes() == f.read_bytes()
               for f in out.rglob("*") if f.is_file() and f.name != "README.md")
    print(f"\nengine  workers  seconds  events/s   (release; dask cluster start {started:.1f} s, not counted)")
    print(f"local   1        {local_s:7.2f}  {events.num_rows / local_s:,.0f}")
    print(f"dask    {workers:<8d} {took:7.2f}  {events.num_rows / took:,.0f}   same data files as local: {same}")


if __name__ == "__main__":
    main()
