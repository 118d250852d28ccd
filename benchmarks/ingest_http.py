"""Collector ingest throughput over real HTTP: one `deskcorder serve` process, one sequential client.

    python benchmarks/ingest_http.py [--batches 40] [--events-per-batch 5000] [--encoding msgpack|json]

Prints events/s (wall time of the posts only; bodies are encoded beforehand),
the collector's events per CPU-second (its process's CPU time over the posts:
events/s/core) next to the in-process floor (the same bodies unpacked with
msgpack, made an Arrow table and written as zstd Parquet, in this process, per
CPU-second) and their ratio, per-request latency, and stored bytes per event
(Parquet files; the control database separately). The event mix imitates
real desk work: mostly pointer moves and keys, some clicks, scrolls and focus
changes with window titles.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import msgpack
import psutil

from deskcorder.events import Event, EventKind, events_to_columns

T0 = time.time_ns() + 3_000_000_000  # just after the consent given below: the store checks every event
DEVICE = "bench-device"
BENCH_POLICY = """\
version = 1
scope_text = "Benchmark: every application."
retention_days = 30

[[apps]]
title_include = [".*"]
"""
KEYS = list("abcdefghijklmnopqrstuvwxyz") + ["space", "enter", "backspace", "shift", "ctrl_l", "tab"]
TITLES = ["report.docx - Writer", "Inbox - Mail", "~/src/app - Terminal", "Q3 numbers.xlsx - Calc",
          "Pull request #42 - Browser"]


def make_events(session: str, start: int, n: int, rng: random.Random) -> list[Event]:
    events = []
    x, y = 500, 400
    t_mono = start * 20_000_000
    for seq in range(start, start + n):
        t_mono += int(rng.expovariate(1 / 20_000_000))  # ~50 events/s of activity, irregular like people
        t_wall = T0 + t_mono + rng.randint(0, 999)  # the wall clock is read separately: it jitters
        r = rng.random()
        if r < 0.55:
            x, y = max(0, min(1919, x + rng.randint(-15, 15))), max(0, min(1079, y + rng.randint(-10, 10)))
            events.append(Event(session, seq, t_mono, t_wall, EventKind.MOVE, x=x, y=y))
        elif r < 0.9:
            key = rng.choice(KEYS)
            kind = EventKind.KEY_DOWN if seq % 2 else EventKind.KEY_UP
            events.append(Event(session, seq, t_mono, t_wall, kind, key=key, char=key if len(key) == 1 else None,
                                vk=ord(key[0])))
        elif r < 0.96:
            kind = EventKind.BUTTON_DOWN if seq % 2 else EventKind.BUTTON_UP
            events.append(Event(session, seq, t_mono, t_wall, kind, button="left", x=x, y=y))
        elif r < 0.99:
            events.append(Event(session, seq, t_mono, t_wall, EventKind.SCROLL, x=x, y=y, dx=0, dy=-1))
        else:
            title = rng.choice(TITLES)
            events.append(Event(session, seq, t_mono, t_wall, EventKind.FOCUS, app_process="app",
                                app_class=title.split(" - ")[-1], window_title=title))
    return events


def encode(batch_id: str, events: list[Event], encoding: str) -> bytes:
    body = {"v": 1, "batch_id": batch_id, "device_id": DEVICE, "events": events_to_columns(events)}
    if encoding == "json":
        return json.dumps(body, separators=(",", ":")).encode()
    return msgpack.packb(body, use_bin_type=True)


def floor_events_per_cpu_s(bodies: list[bytes], encoding: str) -> float:
    """The least a collector must do per event: decode, build the Arrow table, write zstd Parquet (in memory)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from deskcorder.events import EVENT_SCHEMA

    start = time.process_time()
    events = 0
    for body in bodies:
        columns = (json.loads(body) if encoding == "json" else msgpack.unpackb(body))["events"]
        table = pa.Table.from_pydict(columns, schema=EVENT_SCHEMA)
        pq.write_table(table, io.BytesIO(), compression="zstd")
        events += table.num_rows
    return events / (time.process_time() - start)


def enrol(data_dir: Path) -> str:
    """A policy, an employee owning the enrolled benchmark device, and their consent: the store refuses
    batches otherwise. Returns the device's secret (for its Authorization header)."""
    from deskcorder.store import EventStore

    with EventStore(data_dir) as store:
        if store.current_policy().version == 0:
            store.set_policy(BENCH_POLICY, actor="benchmark")
        if not any(e.handle == "bench" for e in store.employees()):
            store.add_employee("bench", actor="benchmark")
        token = store.issue_enrolment_token("bench", actor="benchmark")
        secret = store.enrol_device(token, DEVICE, "bench-host", actor="benchmark")[1]
        store.record_consent("bench", "give", policy_version=store.current_policy().version, method="api",
                             actor="benchmark")
    return secret


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--events-per-batch", type=int, default=5000)
    parser.add_argument("--encoding", choices=["msgpack", "json"], default="msgpack")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a fresh temp dir")
    args = parser.parse_args()

    rng = random.Random(7)
    n = args.events_per_batch
    bodies = [encode(f"bench-{i:06d}", make_events("bench-session", i * n, n, rng), args.encoding)
              for i in range(args.batches)]
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="deskcorder-bench-")) / "data"
    secret = enrol(data_dir)
    # No per-device rate limit: this measures how fast one collector stores, not the limiter. The events run
    # ahead of the clock (~20 ms apart from just after the consent: 40 x 5,000 of them span over an hour), past
    # the default 300 s skew; the check still runs on every event.
    proc = subprocess.Popen([sys.executable, "-m", "deskcorder", "serve", "--port", "0", "--data-dir",
                             str(data_dir), "--log-level", "warning", "--device-rate", "0",
                             "--max-clock-skew", "604800"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if m := re.search(r"listening on (http://\S+)", line):
                url = m.group(1)
                break
        else:
            raise SystemExit("the collector did not start")
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        content_type = f"application/{args.encoding}"
        latencies = []
        headers = {"Content-Type": content_type, "Authorization": f"Bearer {DEVICE}:{secret}"}
        server = psutil.Process(proc.pid)
        with httpx.Client(timeout=60, headers=headers) as client:
            client.post(f"{url}/v1/batches", content=bodies[0]).raise_for_status()  # warm-up, not timed
            cpu_before = sum(server.cpu_times()[:2])  # user + system
            start = time.perf_counter()
            for body in bodies[1:]:
                t = time.perf_counter()
                answer = client.post(f"{url}/v1/batches", content=body)
                if answer.is_error:
                    raise SystemExit(f"the collector answered {answer.status_code}: {answer.text}")
                latencies.append(time.perf_counter() - t)
            wall = time.perf_counter() - start
            server_cpu = sum(server.cpu_times()[:2]) - cpu_before
    finally:
        proc.terminate()
        proc.wait()
    events = n * (args.batches - 1)
    parquet = sum(p.stat().st_size for p in (data_dir / "events").rglob("*.parquet"))
    db = sum(p.stat().st_size for p in data_dir.glob("control.db*"))
    body_bytes = sum(len(b) for b in bodies) / len(bodies) / n
    print(f"{args.batches - 1} batches x {n} events ({args.encoding}, {body_bytes:.1f} body bytes/event): "
          f"{events / wall:,.0f} events/s, {len(latencies) / wall:.1f} batches/s")
    floor = floor_events_per_cpu_s(bodies[1:], args.encoding)
    collector = events / server_cpu
    print(f"collector CPU: {collector:,.0f} events/s/core; in-process floor (decode -> Arrow -> zstd Parquet): "
          f"{floor:,.0f} events/s/core; ratio x{floor / collector:.2f}")
    print(f"latency per batch: median {statistics.median(latencies) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms")
    print(f"stored: {parquet / (n * args.batches):.2f} Parquet bytes/event "
          f"({parquet / 1e6:.2f} MB in {len(list((data_dir / 'events').rglob('*.parquet')))} files); "
          f"control db {db / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
