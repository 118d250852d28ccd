"""Stored bytes per event: the event file format of today beside the one before it, on the same events.

    python benchmarks/storage_bytes.py [--devices 4] [--hours 2] [--batch-size 5000] [--upload-interval 0.5]

The events are the load generator's desk-work mix (``load_generator.simulate_desk``:
typing bursts, pointer strokes at 60 Hz, clicks, scrolls, focus changes with
titles), one session per simulated device. Two clock variants:

- ``generator``: ``t_wall_ns = t0 + t_mono_ns``, as the load generator and
  fleet_ingest.py send them;
- ``agent clocks``: plus what separates the agent's two clock reads
  (``time.monotonic_ns()`` then ``time.time_ns()``, sampled here on this
  machine once per event), the part of ``t_wall_ns`` a file must keep exactly.

Each is cut three ways: files of ``--batch-size`` events (an agent draining a
backlog, fleet_ingest.py), one file per ``--upload-interval`` (the agent's
uploads at desk pace; the first ``--upload-files`` of each device), and one file per device and UTC day (what compaction
makes). For each: sealed bytes per event as stored (Parquet sealed by
``_events/_sealed.py``, its header and tag included) in format 2 (written now)
and format 1 (the reference: what deskcorder wrote before, measured in this
run on the same tables), the raw Arrow IPC stream of the same events
(uncompressed), and milliseconds to write and to read 5,000 events. Every file
is read back and compared with the events written: a mismatch stops the run.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_generator import simulate_desk  # noqa: E402

from deskcorder.events import columns_to_table, events_to_columns  # noqa: E402
from deskcorder.store._events._layout import parquet_bytes, read_parquet, v1_parquet_bytes  # noqa: E402
from deskcorder.store._events._sealed import seal, unseal  # noqa: E402

T0_WALL_NS = 1_790_000_000_000_000_000  # 2026-09-21, a weekday
KEY, KEY_ID, PATH = os.urandom(32), "0123456789abcdef", "events/date=2026-09-21/device=d/b-0.parquet"
FORMATS = {"format 2 (now)": parquet_bytes, "format 1 (before)": v1_parquet_bytes}


def clock_gaps(n: int) -> list[int]:
    """What separates n pairs of back-to-back monotonic/wall clock reads, less the smallest."""
    gaps = []
    for i in range(n):
        mono, wall = time.monotonic_ns(), time.time_ns()
        gaps.append(wall - mono)
        if i % 8 == 0:
            time.sleep(0)  # let the scheduler in now and then, as an agent's callbacks are spread out
    low = min(gaps)
    return [g - low for g in gaps]


def arrow_ipc_bytes(table: pa.Table) -> int:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as out:
        out.write_table(table)
    return sink.getvalue().size


def cuts(table: pa.Table, batch_size: int, interval_ns: int, uploads: int) -> dict[str, list[pa.Table]]:
    """The device's events as files: fixed-size batches, one per upload interval, one per day."""
    mono = table.column("t_mono_ns").to_numpy()
    window = (mono - mono[0]) // interval_ns
    bounds = [0, *(i for i in range(1, len(window)) if window[i] != window[i - 1]), len(window)]
    return {f"{batch_size:,}-event files": [table.slice(i, batch_size) for i in range(0, table.num_rows, batch_size)],
            "one file per upload": [table.slice(a, b - a) for a, b in zip(bounds, bounds[1:])][:uploads],
            "one file per day": [table]}


def measure(files: list[pa.Table], encode) -> tuple[int, float, float]:
    """Sealed bytes, and write and read seconds (encode + seal, unseal + decode), checking every round trip."""
    stored = 0
    write = read = 0.0
    for table in files:
        start = time.perf_counter()
        sealed = seal(encode(table), KEY, KEY_ID, PATH)
        middle = time.perf_counter()
        back = read_parquet(unseal(sealed, KEY, KEY_ID, PATH))
        read += time.perf_counter() - middle
        write += middle - start
        if not back.equals(table):
            raise SystemExit(f"{encode.__name__}: a file read back differs from the events written")
        stored += len(sealed)
    return stored, write, read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--upload-interval", type=float, default=0.5)
    parser.add_argument("--upload-files", type=int, default=500,
                        help="per-upload files measured per device (their first ones; thousands take minutes)")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    streams = [simulate_desk(rng, f"bench-{d:03d}-session-{rng.getrandbits(64):016x}", args.hours * 3600)
               for d in range(args.devices)]
    n = sum(len(s) for s in streams)
    gaps = clock_gaps(max(len(s) for s in streams))
    print(f"{args.devices} devices x {args.hours:g} h of the load generator's desk-work mix: {n:,} events")
    for variant in ("generator", "agent clocks"):
        tables = []
        for events in streams:
            for e, gap in zip(events, gaps):
                e.t_wall_ns = T0_WALL_NS + e.t_mono_ns + (gap if variant == "agent clocks" else 0)
            tables.append(columns_to_table(events_to_columns(events)))
        ipc = sum(arrow_ipc_bytes(t) for t in tables) / sum(t.num_rows for t in tables)
        print(f"\n{variant} (raw Arrow IPC, uncompressed: {ipc:.1f} bytes/event)")
        print(f"  {'files':<24}{'files':>7}  " + "".join(f"{name:>24}" for name in FORMATS) + "    ratio")
        every = [cuts(t, args.batch_size, int(args.upload_interval * 1e9), args.upload_files) for t in tables]
        for cut in every[0]:
            files = [f for files_of_device in every for f in files_of_device[cut]]
            in_files = sum(f.num_rows for f in files)
            figures = {}
            for name, encode in FORMATS.items():
                stored, write, read = measure(files, encode)
                per5k = 5000 / in_files * 1000
                figures[name] = stored / in_files
                figures[name + " cell"] = f"{stored / in_files:7.2f} B/ev {write * per5k:4.1f}/{read * per5k:4.1f} ms"
            now, before = figures["format 2 (now)"], figures["format 1 (before)"]
            print(f"  {cut:<24}{len(files):>7,}  " + "".join(f"{figures[name + ' cell']:>24}" for name in FORMATS)
                  + f"    x{before / now:.2f}")
    print("\nB/ev: sealed bytes stored per event; ms: write / read per 5,000 events (encode + seal, unseal + decode)")


if __name__ == "__main__":
    main()
