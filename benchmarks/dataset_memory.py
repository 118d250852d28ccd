"""Peak memory of the streamed dataset build per event of its largest session group, beside the whole-table build.

    python benchmarks/dataset_memory.py [--events 400000] [--sessions 40] [--people 10]
                                        [--group-events 40000] [--mode release]

Each build runs in a fresh subprocess (one polars thread), first builds a small dataset (what every build pays
once, ~100 MB of lazy imports and compiled patterns, is not counted), and reports its RSS
high-water mark (``getrusage``: native polars and Arrow buffers included,
which ``tracemalloc`` would not see) above what the process held after its
imports, and the CPU seconds of the build:

* ``whole table``: ``build_dataset`` on every event at once, as
  ``build_from_store`` did (every event read first and held, as after one
  ``read_events``).
* ``streamed``: ``build_dataset_streaming`` over groups of whole sessions of
  about ``--group-events`` events, each read when the build asks for it (as
  ``build_from_store`` now reads them), so the store's raw events are
  never all in memory.
* ``reference``: ``benchmarks/dataset_build.py``'s minimal polars pipeline on
  the whole table, for events/s/core.

The events are ``dataset_build.py``'s desk work, one session per device, the
devices shared among ``--people``, synthesised once by the parent into one
Arrow file per session that the children read (reading's CPU is not counted). Both builds are checked to write the same
bytes. Bytes per event are over the largest session group's events (the
figure a streamed build should keep flat as the store grows) and over all
events.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

os.environ.setdefault("POLARS_MAX_THREADS", "1")  # before polars starts its thread pool: per-core figures

import pyarrow as pa

from deskcorder.dataset import BuildOptions, build_dataset
from deskcorder.dataset._stream import build_dataset_streaming, session_groups
from deskcorder.privacy import Pseudonymizer

HERE = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("dataset_build_bench", HERE / "dataset_build.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def session(i: int, n: int) -> pa.Table:
    """Session ``i`` of ``n`` events, on its own device; the same table whoever asks for it."""
    t = bench.synthesise(n, 1, seed=1000 + i)
    t = t.set_column(t.schema.get_field_index("session_id"), "session_id", pa.array([f"{i:032x}"] * t.num_rows))
    return t.append_column("device_id", pa.array([f"device-{i:04d}"] * t.num_rows))


def stored(root: Path, i: int) -> pa.Table:
    """Session ``i`` as the parent wrote it (an Arrow file, as a store read hands a table back): the children
    read events, so the synthesiser's Python lists never weigh on their memory."""
    with pa.memory_map(str(root / f"session-{i:05d}.arrow")) as source:
        return pa.ipc.open_file(source).read_all().combine_chunks()  # copied out of the map, as a read decrypts


def _maxrss() -> int:
    """The RSS high-water mark since the last ``_restart_peak`` (VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _restart_peak() -> int:
    """Freed memory handed back to the system and the high-water mark reset to now (Linux: clear_refs 5), so
    the synthesiser's own Python lists are not counted as the build's; returns the RSS now."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _rss()


def child(kind: str, args: argparse.Namespace, out: Path, key_file: Path) -> dict:
    root = key_file.parent
    sizes = json.loads((root / "sizes.json").read_text())
    owners = {f"device-{i:04d}": f"person-{i % args.people}" for i in range(args.sessions)}
    key = Pseudonymizer.from_file(key_file)
    options = BuildOptions(mode=args.mode)
    # A small build first pays what any build pays once (lazy imports, the Redactor's compiled patterns,
    # polars' first plans: about 100 MB), so what is measured is what grows with the events.
    warm = session(10**6, 2_000)
    if kind == "reference":
        (out.parent / f"{kind}-warm").mkdir()
        bench.reference_pipeline(warm, out.parent / f"{kind}-warm")
    else:
        build_dataset(warm, out.parent / f"{kind}-warm", options, pseudonymizer=key,
                      device_to_employee={"device-1000000": "person-warm"})
    del warm
    base = _restart_peak()
    cpu0 = time.process_time()
    if kind == "streamed":
        # session_groups cuts on stored sizes; here every session's size is known before it is made.
        groups = session_groups([(f"{i:032x}", n) for i, n in enumerate(sizes)], args.group_events)

        reading = [0.0]  # CPU seconds of reading (the store's), not the build's

        def read() -> Iterator[pa.Table]:
            for group in groups:
                start = time.process_time()
                table = pa.concat_tables([stored(root, int(s, 16)) for s in group])
                reading[0] += time.process_time() - start
                yield table

        stats = build_dataset_streaming(read(), out, options, pseudonymizer=key, device_to_employee=owners)
        cpu0 += reading[0]
        largest = max(sum(sizes[int(s, 16)] for s in g) for g in groups)
        n_groups = len(groups)
    else:
        events = pa.concat_tables([stored(root, i) for i in range(len(sizes))])  # held, as after one read
        largest, n_groups = events.num_rows, 1
        cpu0 = time.process_time()
        if kind == "reference":
            out.mkdir()
            bench.reference_pipeline(events, out)
            n = events.num_rows
            return {"kind": kind, "peak": _maxrss() - base, "cpu": time.process_time() - cpu0, "events": n,
                    "largest_group": largest, "groups": 1}
        stats = build_dataset(events, out, options, pseudonymizer=key, device_to_employee=owners)
    return {"kind": kind, "peak": _maxrss() - base, "cpu": time.process_time() - cpu0, "events": stats.events,
            "largest_group": largest, "groups": n_groups}


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes().replace(str(out.resolve()).encode(), b"<out>")
            for p in sorted(out.rglob("*")) if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--group-events", type=int, default=40_000, help="events per streamed session group")
    parser.add_argument("--mode", choices=("release", "internal"), default="release")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args, Path(args.out), Path(args.key))))
        return
    root = Path(tempfile.mkdtemp(prefix="deskcorder-dataset-memory-"))
    key = root / "pseudonym.key"
    Pseudonymizer.from_file(key)  # made here, so every build uses the same key
    sizes = []
    for i in range(args.sessions):
        table = session(i, args.events // args.sessions)
        with pa.OSFile(str(root / f"session-{i:05d}.arrow"), "wb") as sink, \
                pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        sizes.append(table.num_rows)
    (root / "sizes.json").write_text(json.dumps(sizes))
    results = {}
    for kind in ("reference", "whole table", "streamed"):
        name = kind.replace(" ", "-")
        argv = [sys.executable, __file__, "--child", name.split("-")[0] if kind != "whole table" else "whole",
                "--out", str(root / name), "--key", str(key), "--events", str(args.events),
                "--sessions", str(args.sessions), "--people", str(args.people),
                "--group-events", str(args.group_events), "--mode", args.mode]
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        results[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    same = _files(root / "whole-table") == _files(root / "streamed")
    n = results["whole table"]["events"]
    print(f"{n:,} events in {args.sessions} sessions of {args.people} people, {args.mode} build, "
          f"streamed in {results['streamed']['groups']} groups of <= {results['streamed']['largest_group']:,} events")
    print(f"\n{'build':<12} {'peak RSS MB':>11} {'B/event (largest group)':>24} {'B/event (all)':>14} "
          f"{'CPU s':>6} {'events/s/core':>14} {'vs reference':>13}")
    ref = n / results["reference"]["cpu"]
    for kind, r in results.items():
        rate = r["events"] / r["cpu"]
        print(f"{kind:<12} {r['peak'] / 1e6:11.1f} {r['peak'] / r['largest_group']:24.0f} {r['peak'] / n:14.0f} "
              f"{r['cpu']:6.2f} {rate:14,.0f} {rate / ref:13.2f}")
    print(f"\nstreamed and whole-table files identical: {same}")
    if not same:
        sys.exit("the streamed build wrote different bytes")


if __name__ == "__main__":
    main()
