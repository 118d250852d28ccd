"""Fleet mode in batch mode: CPU per batch and events/s per core of one collector and one writer.

    python benchmarks/fleet_ingest.py [--batch-sizes 1000,2000,5000] [--events 200000] [--clients 4]
        [--rounds 1] [--src LABEL=DIR ...] [--nats URL] [--postgres URL]

One `deskcorder serve --nats` collector and one `deskcorder writer` (each its own
process, as in production), a fresh PostgreSQL database and JetStream stream per
run. ``--clients`` enrolled devices post batches of exactly N events of the load
generator's desk-work mix (``load_generator.simulate_desk``: typing, pointer
strokes, clicks, scrolls, focus changes with titles), each device its batches in
order and back to back, as an agent drains a backlog.

Per-core figures are events / CPU seconds (user + system, psutil) of that
process, counted from the first timed post until the writer has stored the last
event, after one untimed warm-up batch per device. By default the writer is
frozen (SIGSTOP) while the batches are posted and then drains them alone, so
that the collector and the writer are each measured without the other on the
cores; ``--overlap`` runs them at the same time, as in production. Everything
shares this machine's cores, so wall-clock events/s is a lower bound;
per-core figures are what sizing uses.

``--src LABEL=DIR`` (repeatable) runs every measurement once per source tree
(``DIR`` is put first on PYTHONPATH, e.g. a copy of ``src/`` from before a
change; several folders joined by ``:`` work too), alternating them in each
round so that both see the same machine load; the summary gives min-max over
the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NATS_MAX_PAYLOAD = 1024 * 1024  # nats-server's default max_payload; the collector answers 413 above it


def make_bodies(device: str, n_batches: int, size: int, rng: random.Random, t0_wall_ns: int) -> list[bytes]:
    """``n_batches`` batches of exactly ``size`` events from one device's desk-work stream."""
    from load_generator import simulate_desk

    from deskcorder.events import events_to_columns
    from deskcorder.wire import encode_batch

    needed = n_batches * size
    seconds = needed / 5.0
    while len(events := simulate_desk(rng, f"{device}-session", seconds)) < needed:
        seconds *= 1.5
    bodies = []
    for k in range(n_batches):
        chunk = events[k * size:(k + 1) * size]
        for e in chunk:
            e.t_wall_ns = t0_wall_ns + e.t_mono_ns
        bodies.append(encode_batch(f"{device}-{size}-{k:06d}", device, events_to_columns(chunk)))
    return bodies


async def post_all(url: str, bodies: dict[str, list[bytes]], secrets: dict[str, str]) -> list[float]:
    """Each device posts its batches in order, back to back; returns every post's latency (s)."""
    import httpx

    latencies: list[float] = []

    async def device(name: str, items: list[bytes], client: httpx.AsyncClient) -> None:
        headers = {"Content-Type": "application/msgpack", "Authorization": f"Bearer {name}:{secrets[name]}"}
        for body in items:
            t = time.perf_counter()
            while True:
                response = await client.post(f"{url}/v1/batches", content=body, headers=headers)
                if response.status_code == 200:
                    break
                if response.status_code not in (429, 503):
                    raise SystemExit(f"collector answered {response.status_code}: {response.text}")
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            latencies.append(time.perf_counter() - t)

    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(device(name, items, client) for name, items in bodies.items()))
    return latencies


def stored_events(store: Any) -> int:
    return sum(s.n_events for s in store.sessions())


def wait_stored(store: Any, expected: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while stored_events(store) < expected:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {stored_events(store)} of {expected} events stored after {timeout:.0f} s")
        time.sleep(0.05)


def one_run(size: int, args: argparse.Namespace) -> dict[str, Any]:
    """One collector + one writer at one batch size; returns the figures."""
    import psycopg
    from load_generator import Proc, enrol, service_cpu, tear_down

    from deskcorder.store import EventStore

    work = Path(tempfile.mkdtemp(prefix="deskcorder-fleet-ingest-"))
    data_dir = work / "data"
    stream = f"DESKCORDER_BENCH_{uuid.uuid4().hex[:8].upper()}"
    db = f"deskcorder_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(args.postgres, autocommit=True)
    admin.execute(f'CREATE DATABASE "{db}"')
    database_url = args.postgres.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + db
    procs: list[Proc] = []
    try:
        devices = [f"bench-{i:03d}-device" for i in range(args.clients)]
        with EventStore(data_dir, database_url=database_url) as store:
            secrets = enrol(store, devices)
        per_device = max(2, -(-args.events // (size * args.clients)))  # + 1 warm-up batch each
        rng = random.Random(args.seed)
        t0_wall_ns = time.time_ns() + 5 * 1_000_000_000  # after the consent just given
        bodies = {d: make_bodies(d, per_device + 1, size, rng, t0_wall_ns) for d in devices}
        largest = max(len(b) for items in bodies.values() for b in items)
        if largest > NATS_MAX_PAYLOAD - 1024:
            raise SystemExit(f"a {size}-event batch is {largest} bytes, over NATS' default max_payload of "
                             f"{NATS_MAX_PAYLOAD}; use smaller --batch-sizes or raise max_payload")
        common = ["--data-dir", str(data_dir), "--database-url", database_url, "--log-level", "warning"]
        # --max-clock-skew: the bodies hold hours of desk work made up front and posted at once, so most of
        # it is stamped ahead of the clock (an agent only sends what already happened); a week is the most.
        procs.append(Proc(["serve", "--port", "0", "--retention-interval", "0", "--device-rate", "0",
                           "--max-clock-skew", "604800", "--nats", args.nats, "--stream", stream, *common],
                          r"listening on (http://\S+)"))
        procs.append(Proc(["writer", "--nats", args.nats, "--stream", stream, *common],
                          r"deskcorder writer consuming"))
        collector, writer = procs
        assert collector.match is not None
        url = collector.match.group(1)

        with EventStore(data_dir, database_url=database_url) as store:
            # Warm-up: connection pools, lazy imports and first-call caches are not what is measured.
            asyncio.run(post_all(url, {d: items[:1] for d, items in bodies.items()}, secrets))
            wait_stored(store, size * len(devices))
            timed = {d: items[1:] for d, items in bodies.items()}
            n_batches = sum(len(items) for items in timed.values())
            n_events = n_batches * size
            if not args.overlap:
                # Frozen while the collector is measured, so the two do not share the cores; its last
                # pull request (1 s) expires first, so that no batch is handed to it while frozen.
                writer.popen.send_signal(signal.SIGSTOP)
                time.sleep(1.5)
            cpu0 = {"collector": collector.cpu(), "writer": writer.cpu(), "postgres": service_cpu("postgres"),
                    "nats-server": service_cpu("nats-server")}
            start = time.perf_counter()
            latencies = asyncio.run(post_all(url, timed, secrets))
            posted = time.perf_counter() - start
            if not args.overlap:
                writer.popen.send_signal(signal.SIGCONT)
            wait_stored(store, n_events + size * len(devices))
            until_stored = time.perf_counter() - start
            cpu1 = {"collector": collector.cpu(), "writer": writer.cpu(), "postgres": service_cpu("postgres"),
                    "nats-server": service_cpu("nats-server")}
        files = list(data_dir.glob("events/**/*.parquet"))
        lat = sorted(latencies)
        cpu = {k: cpu1[k] - cpu0[k] for k in cpu0}
        body_bytes = sum(len(b) for items in timed.values() for b in items)
        return {
            "batch_size": size, "batches": n_batches, "events": n_events, "clients": len(devices),
            "cpu_s": cpu,
            "per_core": {k: n_events / v if v > 0 else float("inf") for k, v in cpu.items()},
            "ms_per_batch": {k: v / n_batches * 1e3 for k, v in cpu.items()},
            "posted_events_s": n_events / posted, "stored_events_s": n_events / until_stored,
            "drained_events_s": n_events / (until_stored - posted) if not args.overlap else None,
            "p50_ms": lat[len(lat) // 2] * 1e3, "p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1e3,
            "body_bytes_per_event": body_bytes / n_events, "largest_body": largest,
            "parquet_bytes_per_event": sum(f.stat().st_size for f in files) / (n_events + size * len(devices)),
        }
    finally:
        for p in procs:
            if p.popen.poll() is None:
                p.popen.send_signal(signal.SIGCONT)  # a frozen writer would not see the SIGTERM
            p.stop()
        tear_down(args.nats, stream, admin, db, work, keep=args.keep)


def print_run(label: str, r: dict[str, Any]) -> None:
    pc, ms = r["per_core"], r["ms_per_batch"]
    wall = f"{r['posted_events_s']:>8,.0f} ev/s posted, " + (
        f"{r['drained_events_s']:>8,.0f} ev/s drained by the writer" if r.get("drained_events_s")
        else f"{r['stored_events_s']:>8,.0f} ev/s stored")
    print(f"  [{label}] {r['batch_size']:>5} events/batch x {r['batches']} batches: "
          f"collector {pc['collector']:>9,.0f} ev/s/core ({ms['collector']:5.2f} ms CPU/batch), "
          f"writer {pc['writer']:>9,.0f} ev/s/core ({ms['writer']:5.2f} ms), "
          f"postgres {pc['postgres']:>9,.0f}, nats {pc['nats-server']:>9,.0f}; wall: {wall}; "
          f"HTTP p50 {r['p50_ms']:.1f} / p99 {r['p99_ms']:.1f} ms; "
          f"{r['body_bytes_per_event']:.1f} body B/ev (largest {r['largest_body'] / 1024:.0f} KiB), "
          f"{r['parquet_bytes_per_event']:.1f} Parquet B/ev", flush=True)


def span(values: list[float], fmt: str = ",.0f") -> str:
    lo, hi = min(values), max(values)
    return f"{lo:{fmt}}" if len(values) == 1 else f"{lo:{fmt}}-{hi:{fmt}}"


def summary(results: dict[tuple[str, int], list[dict[str, Any]]]) -> None:
    print("\n== summary (min-max over rounds) ==")
    print(f"  {'source':<10}{'batch':>6}  {'collector ev/s/core':>21}  {'ms/batch':>11}  {'writer ev/s/core':>19}  "
          f"{'ms/batch':>11}  {'p50 ms':>11}  {'p99 ms':>11}  {'body B/ev':>9}  {'Parquet B/ev':>12}")
    for (label, size), runs in results.items():
        print(f"  {label:<10}{size:>6}  {span([r['per_core']['collector'] for r in runs]):>21}  "
              f"{span([r['ms_per_batch']['collector'] for r in runs], '.2f'):>11}  "
              f"{span([r['per_core']['writer'] for r in runs]):>19}  "
              f"{span([r['ms_per_batch']['writer'] for r in runs], '.2f'):>11}  "
              f"{span([r['p50_ms'] for r in runs], '.1f'):>11}  {span([r['p99_ms'] for r in runs], '.1f'):>11}  "
              f"{statistics.mean(r['body_bytes_per_event'] for r in runs):>9.1f}  "
              f"{statistics.mean(r['parquet_bytes_per_event'] for r in runs):>12.1f}")


def main() -> None:
    from load_generator import add_server_options

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-sizes", default="1000,2000,5000", help="events per batch, comma-separated")
    parser.add_argument("--events", type=int, default=200_000, help="timed events per run (rounded up to batches)")
    parser.add_argument("--clients", type=int, default=4, help="devices posting at once")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--src", action="append", default=[], metavar="LABEL=DIR",
                        help="compare source trees (DIR goes first on PYTHONPATH); default: the installed one")
    add_server_options(parser)
    parser.add_argument("--overlap", action="store_true",
                        help="run the writer while the collector is posted to (default: posts first with the "
                             "writer frozen, then the writer drains them alone)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the data dirs")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child run: one batch size, JSON out
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    if args.one is not None:
        print("RESULT " + json.dumps(one_run(args.one, args)), flush=True)
        return

    sizes = [int(s) for s in args.batch_sizes.split(",")]
    sources = [tuple(s.split("=", 1)) for s in args.src] or [("installed", "")]
    print(f"{os.cpu_count()} cores; batch sizes {sizes}, ~{args.events:,} events per run, {args.clients} clients, "
          f"{args.rounds} round(s), sources: {', '.join(label for label, _ in sources)}", flush=True)
    results: dict[tuple[str, int], list[dict[str, Any]]] = {(label, s): [] for label, _ in sources for s in sizes}
    for rnd in range(args.rounds):
        for size in sizes:
            order = sources if rnd % 2 == 0 else sources[::-1]  # neither source always runs first
            for label, src in order:
                env = dict(os.environ)
                if src:  # DIR may list several folders (os.pathsep), e.g. src/ plus extra packages
                    env["PYTHONPATH"] = os.pathsep.join([str(Path(p).resolve()) for p in src.split(os.pathsep)]
                                                        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
                child = [sys.executable, str(Path(__file__).resolve()), "--one", str(size), "--events",
                         str(args.events), "--clients", str(args.clients), "--nats", args.nats, "--postgres",
                         args.postgres, "--seed", str(args.seed + rnd)] + (["--keep"] if args.keep else []) \
                    + (["--overlap"] if args.overlap else [])
                out = subprocess.run(child, env=env, capture_output=True, text=True)
                line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
                if out.returncode or line is None:
                    raise SystemExit(f"run {label} at {size} events/batch failed:\n{out.stdout}\n{out.stderr}")
                r = json.loads(line[len("RESULT "):])
                results[label, size].append(r)
                print_run(label, r)
    summary(results)


if __name__ == "__main__":
    main()
