"""Dataset build throughput: synthetic desk work through ``build_dataset``, timed per stage.

    python benchmarks/dataset_build.py [--events 1000000] [--sessions 20] [--engine dask --workers 2]

The stream imitates a person at work: bursts of typing (with shift, backspace
and the odd hotkey), pointer moves between clicks, drags, scroll runs, app
switches with window titles, idle gaps. Prints events/s and actions/s for the
whole build (reading excluded: the events are already in memory, as after
``EventStore.read_events``) and the size of what was written. With ``--engine
dask`` it also builds on a local Dask cluster of ``--workers`` processes
(started before the clock, and timed apart) and prints both throughputs side
by side, after checking that both folders hold the same bytes.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from deskcorder.dataset import BuildOptions, build_dataset, build_dataset_distributed
from deskcorder.privacy import Pseudonymizer
from deskcorder.events import EVENT_SCHEMA

APPS = [("Code", "code", "main.py - project - Visual Studio Code"), ("XTerm", "xterm", "~/project"),
        ("Firefox", "firefox", "Pull request #42 - Mozilla Firefox"), ("Notes", "python3", "notes.txt")]
WORDS = "the quick brown fox jumps over a lazy dog while we ship the quarterly report on time".split()


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
            add("focus", app_class=app[0], app_process=app[1], window_title=app[2])
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--engine", choices=("local", "dask"), default="local")
    parser.add_argument("--workers", type=int, default=2, help="local Dask cluster processes (--engine dask)")
    args = parser.parse_args()
    start = time.perf_counter()
    events = synthesise(args.events, args.sessions)
    print(f"synthesised {events.num_rows:,} events in {args.sessions} sessions "
          f"({time.perf_counter() - start:.1f} s, not counted)")
    out = Path(tempfile.mkdtemp(prefix="deskcorder-dataset-bench-")) / "ds"
    start = time.perf_counter()
    key = Pseudonymizer.generate()  # one key for both builds, so their files can be compared
    stats = build_dataset(events, out, BuildOptions(), pseudonymizer=key)
    took = time.perf_counter() - start
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"built {stats.actions:,} actions in {stats.episodes:,} episodes in {took:.2f} s: "
          f"{events.num_rows / took:,.0f} events/s, {stats.actions / took:,.0f} actions/s")
    print(f"actions by kind: {stats.actions_by_kind}")
    print(f"written: {size / 1e6:.1f} MB ({size / events.num_rows:.1f} bytes per input event) in {out}")
    if args.engine == "dask":
        _compare_dask(events, out, took, args.workers, key)


def _compare_dask(events: pa.Table, local_out: Path, local_s: float, workers: int, key: Pseudonymizer) -> None:
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        started = time.perf_counter() - start
        out = local_out.parent / "ds-dask"
        start = time.perf_counter()
        build_dataset_distributed(events, out, BuildOptions(), client=client, pseudonymizer=key)
        took = time.perf_counter() - start
    same = all((local_out / f.name).read_bytes() == f.read_bytes() for f in out.iterdir())
    print(f"engine  workers  seconds  events/s   (dask cluster start {started:.1f} s, not counted)")
    print(f"local   1        {local_s:7.2f}  {events.num_rows / local_s:,.0f}")
    print(f"dask    {workers:<8d} {took:7.2f}  {events.num_rows / took:,.0f}   same bytes as local: {same}")


if __name__ == "__main__":
    main()
