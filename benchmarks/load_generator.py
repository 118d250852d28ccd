"""Fleet load generator: simulated devices upload realistic event streams to real collectors over HTTP.

    python benchmarks/load_generator.py [--mode embedded|fleet|both] [--devices 200] [--duration 30]
        [--upload-interval 0.5] [--speed 1] [--collectors 1] [--writers 1]
        [--nats nats://127.0.0.1:4222] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Each simulated device replays a desk-work stream built with ``deskcorder.events``:
typing bursts (key down/up pairs), pointer strokes (moves at the agent's 60 Hz,
usually ending in a click), scrolls, focus changes with window titles, and
reading pauses. Like the agent, a device posts what it recorded every
``--upload-interval`` seconds (nothing when it recorded nothing), and retries
on 429/503 after Retry-After. ``--speed 2`` replays twice as fast (each
simulated device then stands for two people).

Modes, each on this machine:
    embedded  one `deskcorder serve` writing SQLite + Parquet itself
    fleet     `deskcorder serve --nats` x collectors -> JetStream -> `deskcorder writer` x writers
              -> PostgreSQL (a fresh database, dropped afterwards) + Parquet

Reported: offered and accepted events/s, sustained events/s (events stored over
the time from the first post until the last event was stored, so a writer
backlog counts against it), HTTP latency p50/p99 (post until 200, retries
included), Parquet bytes per event on disk, and the CPU seconds each process
used (psutil), turned into per-core figures and then into the cores a fleet of
``--fleet-devices`` (70,000) needs. Every request goes to 127.0.0.1 and the run
stops by itself after --duration (plus the drain).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil

from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.store import EventStore
from deskcorder.wire import MSGPACK, encode_batch

NS = 1_000_000_000
KEYS = list("etaoinshrdlucmfwypvbgkjqxz") + ["space"] * 6 + ["backspace", "enter", "shift", "tab", "ctrl_l"]
APPS = [("soffice", "libreoffice-writer", "Q3 report.odt - LibreOffice Writer"),
        ("thunderbird", "thunderbird", "Inbox - Mozilla Thunderbird"),
        ("code", "Code", "main.py - project - Visual Studio Code"),
        ("firefox", "firefox", "Pull request #42 - Mozilla Firefox"),
        ("xterm", "XTerm", "~/src/app")]
POLICY = """\
version = 1
scope_text = "Load test: every application, any time."
retention_days = 3650

[[apps]]
title_include = [".*"]
"""
ACTOR = "load-generator"


# -- what a person at a desk produces --------------------------------------------------------------

def simulate_desk(rng: random.Random, session: str, seconds: float) -> list[Event]:
    """``seconds`` of desk work as the agent records it (t_mono from 0; t_wall is added when sent)."""
    events: list[Event] = []
    t = 0.0
    x, y = rng.randint(0, 1919), rng.randint(0, 1079)

    def add(kind: EventKind, at: float, **fields: Any) -> None:
        events.append(Event(session, len(events), int(at * NS), int(at * NS), kind, **fields))

    process, app_class, title = rng.choice(APPS)
    add(EventKind.FOCUS, t, app_process=process, app_class=app_class, window_title=title)
    while t < seconds:
        r = rng.random()
        if r < 0.35:  # a typing burst: 5-60 keys at 4-7 keys/s, each held 50-120 ms
            for _ in range(rng.randint(5, 60)):
                key = rng.choice(KEYS)
                char = " " if key == "space" else key if len(key) == 1 else None
                add(EventKind.KEY_DOWN, t, key=key, char=char, vk=ord(key[0]))
                add(EventKind.KEY_UP, t + rng.uniform(0.05, 0.12), key=key, char=char, vk=ord(key[0]))
                t += rng.uniform(0.14, 0.25)
        elif r < 0.70:  # a pointer stroke at 60 Hz for 0.2-1.5 s, usually ending in a click
            tx, ty = rng.randint(0, 1919), rng.randint(0, 1079)
            steps = max(2, int(rng.uniform(0.2, 1.5) * 60))
            for i in range(1, steps + 1):
                add(EventKind.MOVE, t, x=x + (tx - x) * i // steps, y=y + (ty - y) * i // steps)
                t += 1 / 60
            x, y = tx, ty
            if rng.random() < 0.7:
                add(EventKind.BUTTON_DOWN, t, button="left", x=x, y=y)
                add(EventKind.BUTTON_UP, t + rng.uniform(0.08, 0.15), button="left", x=x, y=y)
                t += 0.2
        elif r < 0.80:  # scrolling through a page
            for _ in range(rng.randint(3, 15)):
                add(EventKind.SCROLL, t, x=x, y=y, dx=0, dy=rng.choice((-1, 1)))
                t += rng.uniform(0.03, 0.1)
        elif r < 0.85:  # switching application
            process, app_class, title = rng.choice(APPS)
            add(EventKind.FOCUS, t, app_process=process, app_class=app_class, window_title=title)
        else:  # reading, thinking, talking: nothing recorded
            t += rng.uniform(2, 30)
        t += rng.uniform(0.2, 2.0)
    events = [e for e in events if e.t_mono_ns < seconds * NS]
    events.sort(key=lambda e: e.t_mono_ns)  # key-ups were stamped ahead
    for seq, e in enumerate(events):
        e.seq = seq
    return events


@dataclasses.dataclass
class Upload:
    send_at: float  # seconds after the run starts
    body: bytes
    n_events: int


def device_uploads(device: str, events: list[Event], interval: float, speed: float, t0_wall_ns: int,
                   phase: float) -> list[Upload]:
    """The device's events cut into one batch per upload interval, as the agent's uploader sends them.

    ``phase`` (0 to interval): when in each interval this device uploads; agents started at different
    moments are not in step, and in-step uploads would only measure the collector's 429s.
    """
    uploads = []
    by_window: dict[int, list[Event]] = {}
    for e in events:
        by_window.setdefault(int(e.t_mono_ns / NS / speed // interval), []).append(e)
    for k in sorted(by_window):
        window = by_window[k]
        for e in window:
            e.t_wall_ns = t0_wall_ns + int(e.t_mono_ns / speed)
        uploads.append(Upload((k + 1) * interval + phase, encode_batch(f"{device}-{k:07d}", device,
                                                               events_to_columns(window), MSGPACK), len(window)))
    return uploads


# -- processes --------------------------------------------------------------------------------------

class Proc:
    def __init__(self, argv: list[str], ready: str):
        self.popen = subprocess.Popen([sys.executable, "-m", "deskcorder", *argv], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        found = threading.Event()
        self.match: re.Match[str] | None = None

        def pump() -> None:
            assert self.popen.stdout is not None
            for line in self.popen.stdout:
                self.lines.append(line)
                if self.match is None and (m := re.search(ready, line)):
                    self.match = m
                    found.set()
            found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(60) or self.match is None:
            self.popen.kill()
            raise SystemExit(f"{argv[0]} did not start:\n{''.join(self.lines)}")
        self.ps = psutil.Process(self.popen.pid)

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(30)
        except subprocess.TimeoutExpired:
            self.popen.kill()


def service_cpu(name: str) -> float:
    """CPU seconds used so far by every process of a system service (nats-server, postgres)."""
    total = 0.0
    for p in psutil.process_iter(["name"]):
        if p.info["name"] and p.info["name"].startswith(name):
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
    return total


# -- one run -------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Result:
    mode: str
    devices: int
    duration: float
    offered_events: int
    batches: int
    accepted_events: int
    stored_events: int
    first_send: float  # seconds after the start: the first and last upload's scheduled time
    last_send: float
    wall_until_stored: float  # seconds after the start until every offered event was stored
    latencies: list[float]
    retries: dict[int, int]
    parquet_bytes: int
    files: int
    control_bytes: int
    cpu: dict[str, float]

    def line(self, label: str, value: str) -> None:
        print(f"  {label:<28}{value}")

    def report(self) -> None:
        lat = sorted(self.latencies)
        p = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000) if lat else (lambda q: float("nan"))
        print(f"\n== {self.mode}: {self.devices} devices for {self.duration:.0f} s ==")
        span = max(1e-9, self.last_send - self.first_send)
        self.line("offered", f"{self.offered_events / span:,.0f} events/s in {self.batches / span:,.0f} "
                             f"batches/s ({self.offered_events / max(1, self.batches):.0f} events/batch)")
        self.line("accepted (HTTP 200)", f"{self.accepted_events:,} events")
        self.line("sustained (stored)", f"{self.stored_events / (self.wall_until_stored - self.first_send):,.0f} "
                                        f"events/s ({self.stored_events:,} events, all stored "
                                        f"{self.wall_until_stored - self.last_send:.1f} s after the last upload)")
        self.line("ingest latency", f"p50 {p(0.50):.1f} ms, p99 {p(0.99):.1f} ms, max {p(1.0):.0f} ms"
                                    + (f"; retried answers {self.retries}" if self.retries else ""))
        self.line("Parquet on disk", f"{self.parquet_bytes / max(1, self.stored_events):.2f} bytes/event "
                                     f"({self.parquet_bytes / 1e6:.1f} MB in {self.files} files)")
        self.line("control database grew", f"{self.control_bytes / max(1, self.batches):,.0f} bytes/batch "
                                           f"(manifest, sessions, per-file rows, indexes)")
        for name, seconds in self.cpu.items():
            per_core = self.stored_events / seconds if seconds > 0 else float("inf")
            self.line(f"CPU {name}", f"{seconds:6.1f} s  -> {per_core:>9,.0f} events/s per core, "
                                     f"{self.batches / seconds if seconds > 0 else 0:>7,.0f} batches/s per core")


async def drive(url: list[str], uploads: dict[str, list[Upload]], secrets: dict[str, str], result: Result) -> None:
    start = time.monotonic()

    async def device(i: int, name: str, items: list[Upload], client: httpx.AsyncClient) -> None:
        # Every upload is authenticated, as an enrolled agent's is: its cost is part of what is measured.
        headers = {"Content-Type": MSGPACK, "Authorization": f"Bearer {name}:{secrets[name]}"}
        for up in items:
            delay = start + up.send_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            t = time.perf_counter()
            while True:
                try:
                    response = await client.post(f"{url[i % len(url)]}/v1/batches", content=up.body,
                                                 headers=headers)
                except httpx.TransportError:
                    result.retries[0] = result.retries.get(0, 0) + 1
                    await asyncio.sleep(1)
                    continue
                if response.status_code == 200:
                    break
                if response.status_code not in (429, 503):
                    raise SystemExit(f"collector answered {response.status_code}: {response.text}")
                result.retries[response.status_code] = result.retries.get(response.status_code, 0) + 1
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            result.latencies.append(time.perf_counter() - t)
            result.accepted_events += up.n_events

    limits = httpx.Limits(max_connections=len(uploads) + 10, max_keepalive_connections=len(uploads) + 10)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await asyncio.gather(*(device(i, name, items, client) for i, (name, items) in enumerate(uploads.items())))


def enrol(store: EventStore, devices: list[str]) -> dict[str, str]:
    """One consenting person per enrolled device; returns each device's secret."""
    if store.current_policy().version == 0:
        store.set_policy(POLICY, actor=ACTOR)
    version = store.current_policy().version
    secrets = {}
    for device in devices:  # one person per desk: each has their own data key, as in a real fleet
        store.add_employee(f"person-{device}", actor=ACTOR)
        token = store.issue_enrolment_token(f"person-{device}", actor=ACTOR)
        secrets[device] = store.enrol_device(token, device, f"{device}.bench", actor=ACTOR)[1]
        store.record_consent(f"person-{device}", "give", policy_version=version, method="api", actor=ACTOR)
    return secrets


def run(mode: str, args: argparse.Namespace) -> Result:
    work = Path(tempfile.mkdtemp(prefix=f"deskcorder-load-{mode}-"))
    data_dir = work / "data"
    devices = [f"load-{mode}-{i:05d}" for i in range(args.devices)]
    database_url = None
    admin = None
    db = None
    stream = f"DESKCORDER_LOAD_{uuid.uuid4().hex[:8].upper()}"
    if mode == "fleet":
        import psycopg

        admin = psycopg.connect(args.postgres, autocommit=True)
        db = f"deskcorder_load_{uuid.uuid4().hex[:8]}"
        admin.execute(f'CREATE DATABASE "{db}"')
        database_url = args.postgres.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + db
    procs: dict[str, list[Proc]] = {"collector": [], "writer": []}
    try:
        with EventStore(data_dir, database_url=database_url) as store:
            secrets = enrol(store, devices)
        common = ["--data-dir", str(data_dir)] + (["--database-url", database_url] if database_url else [])
        fleet = ["--nats", args.nats, "--stream", stream] if mode == "fleet" else []
        n_collectors = args.collectors if mode == "fleet" else 1
        for _ in range(n_collectors):
            # --device-rate 0: --speed replays hours in minutes, far above an agent's real upload rate.
            procs["collector"].append(Proc(["serve", "--port", "0", "--log-level", "warning",
                                            "--retention-interval", "0", "--device-rate", "0", *common, *fleet],
                                           r"listening on (http://\S+)"))
        if mode == "fleet":
            for _ in range(args.writers):
                procs["writer"].append(Proc(["writer", "--nats", args.nats, "--stream", stream, "--log-level",
                                             "warning", *common], r"deskcorder writer consuming"))
        urls = [p.match.group(1) for p in procs["collector"] if p.match]

        rng = random.Random(args.seed)
        t0_wall_ns = time.time_ns() + 5 * NS  # after the consent just given, and after this set-up
        uploads = {}
        for device in devices:
            events = simulate_desk(rng, f"{device}-session", args.duration * args.speed)
            uploads[device] = device_uploads(device, events, args.upload_interval, args.speed, t0_wall_ns,
                                             rng.uniform(0, args.upload_interval))
        offered = sum(u.n_events for ups in uploads.values() for u in ups)
        batches = sum(len(ups) for ups in uploads.values())
        sends = [u.send_at for ups in uploads.values() for u in ups]
        result = Result(mode, args.devices, args.duration, offered, batches, 0, 0, min(sends), max(sends), 0.0, [],
                        {}, 0, 0, 0, {})

        control0 = control_size(admin, db, data_dir)
        me = psutil.Process()
        cpu0 = {"load generator": me.cpu_times().user + me.cpu_times().system,
                **{f"{kind}s (x{len(ps)})": sum(p.cpu() for p in ps) for kind, ps in procs.items() if ps},
                "postgres": service_cpu("postgres")}
        if mode == "fleet":
            cpu0["nats-server"] = service_cpu("nats-server")
        while time.time_ns() < t0_wall_ns:
            time.sleep(0.05)
        started = time.monotonic()
        asyncio.run(drive(urls, uploads, secrets, result))
        with EventStore(data_dir, database_url=database_url) as store:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                result.stored_events = sum(s.n_events for s in store.sessions())
                if result.stored_events >= offered:
                    break
                time.sleep(0.1)
        result.wall_until_stored = time.monotonic() - started
        cpu1 = {"load generator": me.cpu_times().user + me.cpu_times().system,
                **{f"{kind}s (x{len(ps)})": sum(p.cpu() for p in ps) for kind, ps in procs.items() if ps},
                "postgres": service_cpu("postgres")}
        if mode == "fleet":
            cpu1["nats-server"] = service_cpu("nats-server")
        result.cpu = {k: cpu1[k] - cpu0[k] for k in cpu0}
        if mode == "embedded":
            del result.cpu["postgres"]  # not involved
        files = list(data_dir.glob("events/**/*.parquet"))
        result.files = len(files)
        result.parquet_bytes = sum(f.stat().st_size for f in files)
        result.control_bytes = control_size(admin, db, data_dir) - control0
        return result
    finally:
        for ps in procs.values():
            for p in ps:
                p.stop()
        tear_down(args.nats if mode == "fleet" else None, stream, admin, db, work, keep=args.keep)


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """--nats and --postgres, the servers a fleet-mode benchmark runs against (tear_down removes what it made)."""
    parser.add_argument("--nats", default=os.environ.get("DESKCORDER_TEST_NATS", "nats://127.0.0.1:4222"))
    parser.add_argument("--postgres", default=os.environ.get("DESKCORDER_TEST_POSTGRES",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))


def tear_down(nats_url: str | None, stream: str | None, admin: Any, db: str | None, work: Path, *,
              keep: bool) -> None:
    """Remove what a run made: its JetStream stream (``nats_url``), PostgreSQL database (``admin``), data dirs."""
    if nats_url is not None and stream is not None:
        asyncio.run(_delete_stream(nats_url, stream))
    if admin is not None:
        admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()
    if not keep:
        shutil.rmtree(work, ignore_errors=True)


def control_size(admin: Any, db: str | None, data_dir: Path) -> int:
    """Bytes of the control database: the benchmark's PostgreSQL database, or control.db with its WAL."""
    if admin is not None:
        return admin.execute("SELECT pg_database_size(%s)", (db,)).fetchone()[0]
    return sum(f.stat().st_size for f in data_dir.glob("control.db*"))


async def _delete_stream(url: str, name: str) -> None:
    import nats

    nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        await nc.jetstream().delete_stream(name)
    except Exception:
        pass
    finally:
        await nc.close()


# -- to 70,000 devices -------------------------------------------------------------------------------

def fleet_arithmetic(results: list[Result], args: argparse.Namespace) -> None:
    n = args.fleet_devices
    sample = results[0]
    per_device = sample.offered_events / sample.devices / (sample.duration * args.speed)
    batches_per_device = sample.batches / sample.devices / sample.duration / args.speed
    events_s = n * per_device
    batches_s = n * batches_per_device
    print(f"\n== to {n:,} devices ==")
    print(f"  a simulated person at their desk produces {per_device:.1f} events/s "
          f"({per_device * 3600 * 8 / 1e3:,.0f}k events in an 8-hour day), in {batches_per_device:.2f} "
          f"uploads/s ({per_device / batches_per_device:.0f} events/upload, one per "
          f"{args.upload_interval * args.speed:g} s of desk time)")
    print(f"  {n:,} devices all at their desks at once (one time zone, the peak): "
          f"{events_s:,.0f} events/s in {batches_s:,.0f} batches/s")
    for r in results:
        print(f"  {r.mode}:")
        total = 0.0
        for name, seconds in r.cpu.items():
            if name == "load generator" or seconds <= 0:
                continue
            # CPU per batch and per event both matter; the measured mix has the fleet's events per batch.
            cores = events_s / (r.stored_events / seconds)
            total += cores
            print(f"    {name:<22} {seconds / r.batches * 1e3:6.2f} ms CPU/batch -> {cores:8,.1f} cores "
                  f"({n / cores:,.0f} devices per core)")
        print(f"    {'all':<22} {'':>20}    {total:8,.1f} cores at 100% busy; provision ~{total * 1.5:,.0f} "
              f"(at ~65%, for bursts and a lost node)")
    print("  (cores = fleet events/s / measured events per CPU-second at the same events per batch; "
          "a longer upload interval means fewer, bigger batches and fewer cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["embedded", "fleet", "both"], default="both")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--upload-interval", type=float, default=0.5, help="the agent's upload interval")
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed (2: each device is two people)")
    parser.add_argument("--collectors", type=int, default=1, help="fleet mode collectors")
    parser.add_argument("--writers", type=int, default=1, help="fleet mode writers")
    add_server_options(parser)
    parser.add_argument("--fleet-devices", type=int, default=70_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the data dirs")
    args = parser.parse_args()
    modes = ["embedded", "fleet"] if args.mode == "both" else [args.mode]
    print(f"{os.cpu_count()} cores; {args.devices} devices, upload every {args.upload_interval} s, "
          f"replay speed {args.speed}x, {args.duration:.0f} s per mode")
    results = [run(mode, args) for mode in modes]
    for r in results:
        r.report()
    fleet_arithmetic(results, args)


if __name__ == "__main__":
    main()
