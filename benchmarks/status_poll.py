"""Status polls: what one agent's `GET /v1/devices/{id}/status` costs a collector, embedded and fleet mode.

    python benchmarks/status_poll.py [--mode embedded|fleet|both] [--seconds 10] [--devices 200]
        [--employees 0] [--clients 16] [--client sockets|httpx] [--single-seconds 3] [--profile]
        [--nats nats://127.0.0.1:4222] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Every capture agent asks its collector every ``status_poll_s`` (0.5 s by
default) whether it may record (consent, policy, pause), with its device
credential (``Authorization: Bearer <device_id>:<secret>``): 70,000 agents at
0.5 s are 140,000 requests/s with no event in them. A poll is a credential
check (SHA-256 of the secret, one lookup) and ``device_status`` (the policy,
the device's owner, their latest consent), each in a worker thread with its
own pooled database connection.

Modes, each on this machine with ``--devices`` enrolled devices of consenting
employees (``load_generator.enrol``: one person per device; ``--employees N``
deals them to N people):
    embedded  one `deskcorder serve` (SQLite control database in its data dir)
    fleet     one `deskcorder serve --nats ... --database-url` on a fresh PostgreSQL
              database (dropped afterwards) and its own JetStream stream (deleted)

``--clients`` keep-alive connections poll the devices round-robin, each sending
its next poll as soon as the last is answered (closed loop), so the collector
is the bottleneck: the rate is its saturation rate, the latency includes
queueing behind the other connections' polls. Then one connection alone
(``--single-seconds``) gives an unqueued poll's latency and CPU. The client is
one asyncio thread in this process writing pre-built requests on raw sockets,
~0.15 ms of CPU per poll (``--client httpx``, an httpx.AsyncClient, costs
~3 ms, as much as the collector, and becomes the bottleneck); it shares the
cores with the collector, so its CPU is reported too.

Reported, over ``--seconds`` after a warm-up: polls/s, p50/p99 latency, CPU
seconds per 1,000 polls (user + system, psutil) of the collector, of the live
PostgreSQL backends of the benchmark's database, of every postgres process
(as load_generator.py counts it, plus the backends that exited meanwhile: a
pool smaller than the collector's worker threads closes connections after use,
and a busy collector then starts a backend every few polls; the number of new
connections is printed), of nats-server and of the
client; the collector's kernel share and context switches per poll; then the
cores 70,000 devices need at poll intervals of 0.5 to 30 s. ``--profile``
runs py-spy --gil (the collector's Python, by function) and, where installed,
perf (its CPU by kind of code: interpreter, kernel, SQLite/libpq, libc) during
the timed phase and prints where the collector's CPU goes; both slow it down,
so take the other figures from a run without it. Every request goes to
127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from load_generator import ACTOR, POLICY, Proc, add_server_options, enrol, service_cpu, tear_down  # noqa: E402

from deskcorder.store import EventStore  # noqa: E402

INTERVALS_S = (0.5, 1, 2, 5, 10, 30)


# -- set-up ---------------------------------------------------------------------------------------------

def enrol_devices(store: EventStore, devices: list[str], employees: int) -> dict[str, str]:
    """Enrol every device with consent in force; returns each device's secret.

    ``employees`` 0 (or as many as devices): one person per device, as load_generator.py does;
    fewer: the devices are dealt round-robin to that many people.
    """
    if not employees or employees >= len(devices):
        return enrol(store, devices)
    if store.current_policy().version == 0:
        store.set_policy(POLICY, actor=ACTOR)
    version = store.current_policy().version
    handles = [f"person-{i:04d}" for i in range(employees)]
    for handle in handles:
        store.add_employee(handle, actor=ACTOR)
    secrets = {}
    for i, device in enumerate(devices):
        token = store.issue_enrolment_token(handles[i % employees], actor=ACTOR)
        secrets[device] = store.enrol_device(token, device, f"{device}.bench", actor=ACTOR)[1]
    for handle in handles:
        store.record_consent(handle, "give", policy_version=version, method="api", actor=ACTOR)
    return secrets


def check_every_device(url: str, secrets: dict[str, str]) -> None:
    """One poll per device before timing: each must answer 200 with recording allowed."""
    import httpx

    with httpx.Client(base_url=url, timeout=30) as client:
        for device, secret in secrets.items():
            r = client.get(f"/v1/devices/{device}/status", headers={"Authorization": f"Bearer {device}:{secret}"})
            if r.status_code != 200 or not r.json().get("recording_allowed"):
                raise SystemExit(f"status of {device}: {r.status_code} {r.text}")


# -- clients ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Window:
    """What the pollers record: completions (and their latencies) between ``start`` and ``stop``."""

    start: float = float("inf")  # perf_counter; polls answered before it are warm-up
    stop: float = float("inf")  # pollers send nothing after it
    polls: int = 0
    latencies: list[float] = dataclasses.field(default_factory=list)
    errors: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def done(self, t0: float, t1: float, status: int) -> None:
        if t1 < self.start or t1 > self.stop:
            return
        if status != 200:
            self.errors[status] += 1
            return
        self.polls += 1
        self.latencies.append(t1 - t0)


def requests_for(host: str, port: int, devices: list[tuple[str, str]]) -> list[bytes]:
    return [(f"GET /v1/devices/{d}/status HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {d}:{s}\r\n"
             f"Accept: application/json\r\nUser-Agent: status-poll-bench\r\n\r\n").encode() for d, s in devices]


async def socket_poller(host: str, port: int, requests: list[bytes], window: Window) -> None:
    """One keep-alive connection sending its requests round-robin, the next when the last is answered."""
    reader, writer = await asyncio.open_connection(host, port)  # asyncio sets TCP_NODELAY
    try:
        i = 0
        while (t0 := time.perf_counter()) < window.stop:
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            window.done(t0, time.perf_counter(), int(head[9:12]))
    finally:
        writer.close()


async def httpx_poller(client: Any, paths: list[tuple[str, dict[str, str]]], window: Window) -> None:
    i = 0
    while (t0 := time.perf_counter()) < window.stop:
        path, headers = paths[i % len(paths)]
        i += 1
        r = await client.get(path, headers=headers)
        window.done(t0, time.perf_counter(), r.status_code)


async def poll(url: str, secrets: dict[str, str], clients: int, kind: str, warmup: float, seconds: float,
               sample: Callable[[], dict[str, float]]) -> "Phase":
    """``clients`` connections polling for ``warmup`` + ``seconds``; returns the timed window with the
    CPU seconds each measured process used in it (``sample()`` at its start and end)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    devices = list(secrets.items())
    shares = [devices[c::clients] or devices for c in range(clients)]  # round-robin over all devices
    window = Window()
    client = None
    if kind == "sockets":
        tasks = [socket_poller(host, int(port), requests_for(host, int(port), share), window) for share in shares]
    else:
        import httpx

        client = httpx.AsyncClient(base_url=url, timeout=60,
                                   limits=httpx.Limits(max_connections=clients, max_keepalive_connections=clients))
        tasks = [httpx_poller(client, [(f"/v1/devices/{d}/status", {"Authorization": f"Bearer {d}:{s}"})
                                       for d, s in share], window) for share in shares]

    async def timer() -> tuple[dict[str, float], float]:
        await asyncio.sleep(warmup)
        cpu0 = sample()  # blocks this loop for a moment: nothing is answered (nor counted) meanwhile
        window.start = time.perf_counter()
        await asyncio.sleep(seconds)
        window.stop = time.perf_counter()
        cpu1 = sample()
        return {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1}, window.stop - window.start

    try:
        *_, (cpu, span) = await asyncio.gather(*tasks, timer())
    finally:
        if client is not None:
            await client.aclose()
    return Phase(clients, span, window.polls, window.latencies, dict(window.errors), cpu)


# -- measuring ------------------------------------------------------------------------------------------

def backend_cpu(admin: Any, db: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to ``db`` (the collector's pool)."""
    out = {}
    for (pid,) in admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (db,)).fetchall():
        try:
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system
        except psutil.Error:
            pass
    return out


def exited_postgres_cpu() -> float:
    """CPU seconds of the postgres processes that have exited (the postmaster's reaped children).

    ``service_cpu`` sums live processes only, and a collector whose pool closes overflow connections
    starts and ends a backend every few polls: their CPU would be lost.
    """
    total = 0.0
    for p in psutil.process_iter(["name", "ppid"]):
        if p.info["name"] and p.info["name"].startswith("postgres"):
            try:
                if psutil.Process(p.info["ppid"]).name().startswith("postgres"):
                    continue  # a backend or helper; the postmaster is the one whose parent is something else
                t = p.cpu_times()
                total += t.children_user + t.children_system
            except psutil.Error:
                pass
    return total


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000 if s else float("nan")


@dataclasses.dataclass
class Phase:
    """One timed polling phase: ``connections`` in flight for ``seconds``."""

    connections: int
    seconds: float
    polls: int
    latencies: list[float]
    errors: dict[int, int]
    cpu: dict[str, float]  # CPU seconds by process group; "_"-keys: counters (system time, switches, sessions)

    def per_poll(self, name: str) -> float:
        return self.cpu[name] / max(1, self.polls)


@dataclasses.dataclass
class Result:
    mode: str
    devices: int
    employees: int
    client: str
    loaded: Phase  # --clients connections: the collector saturated
    single: Phase | None  # one connection: no queueing, no contention between worker threads
    profile: dict[str, float] | None = None  # the collector's Python by category (py-spy), shares of it
    native: dict[str, float] | None = None  # the collector's CPU by kind of code (perf), shares of it

    def report(self) -> None:
        def line(label: str, value: str) -> None:
            print(f"  {label:<36}{value}")

        ph = self.loaded
        print(f"\n== {self.mode}: {self.devices} devices of {self.employees} employees, {ph.connections} "
              f"connections ({self.client}), {ph.seconds:.1f} s ==")
        line("sustained", f"{ph.polls / ph.seconds:,.0f} polls/s ({ph.polls:,} polls"
                          + (f"; errors {dict(ph.errors)}" if ph.errors else ", all 200") + ")")
        line(f"latency, {ph.connections} in flight", f"p50 {pct(ph.latencies, 0.5):.1f} ms, "
                                                     f"p99 {pct(ph.latencies, 0.99):.1f} ms")
        for name, seconds in ph.cpu.items():
            if name.startswith("_"):
                continue
            busy = seconds / ph.seconds
            extra = ("  (shares the cores: not part of the collector's cost)" if name.startswith("client")
                     else "  (every postgres process of the server, exited ones included)" if name == "postgres (all)"
                     else "  (live backends of the benchmark's database only)" if name == "postgres (its backends)"
                     else "")
            rate = f" -> {1 / ph.per_poll(name):>8,.0f} polls/s per core" if seconds > 0 else ""
            line(f"CPU {name}", f"{ph.per_poll(name) * 1000:6.3f} s/1,000 polls{rate}, {busy:4.2f} cores busy{extra}")
        collector = ph.cpu["collector"]
        line("collector in the kernel", f"{ph.cpu['_collector system'] / collector * 100:.0f} % of its CPU; "
                                        f"{ph.per_poll('_collector switches'):.1f} context switches/poll")
        if "_pg sessions" in ph.cpu:
            line("new PostgreSQL connections", f"{ph.per_poll('_pg sessions') * 1000:,.0f} per 1,000 polls")
        if self.single is not None:
            one = self.single
            line("one at a time", f"{one.polls / one.seconds:,.0f} polls/s, p50 {pct(one.latencies, 0.5):.2f} ms, "
                                  f"p99 {pct(one.latencies, 0.99):.2f} ms; collector "
                                  f"{one.per_poll('collector') * 1000:.3f} s/1,000 polls -> "
                                  f"{1 / one.per_poll('collector'):,.0f} polls/s per core")
        if self.profile:
            # perf splits the CPU by kind of code; without it, the kernel's share is psutil's system time.
            kernel = ph.cpu["_collector system"] / collector
            native = self.native or {PYTHON: 1 - kernel, KERNEL: kernel}
            print("  where the collector's CPU goes (" + ("perf by kind of code, py-spy --gil for the Python part"
                  if self.native else "no perf: the Python part includes libc and the database's C code") + "):")
            for kind, share in native.items():
                print(f"    {share * 100:5.1f} %  {kind}" + (", by what it was doing:" if kind == PYTHON else ""))
                if kind == PYTHON:
                    for name, part in self.profile.items():
                        print(f"      {part * share * 100:5.1f} %  {name}")


def run(mode: str, args: argparse.Namespace) -> Result:
    work = Path(tempfile.mkdtemp(prefix=f"deskcorder-status-{mode}-"))
    data_dir = work / "data"
    devices = [f"poll-{mode}-{i:05d}" for i in range(args.devices)]
    admin = db = database_url = None
    stream = f"DESKCORDER_POLL_{uuid.uuid4().hex[:8].upper()}"
    collector = None
    try:
        if mode == "fleet":
            import psycopg

            admin = psycopg.connect(args.postgres, autocommit=True)
            db = f"deskcorder_poll_{uuid.uuid4().hex[:8]}"
            admin.execute(f'CREATE DATABASE "{db}"')
            database_url = args.postgres.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + db
        with EventStore(data_dir, database_url=database_url) as store:
            secrets = enrol_devices(store, devices, args.employees)
        common = ["--data-dir", str(data_dir)] + (["--database-url", database_url] if database_url else [])
        fleet = ["--nats", args.nats, "--stream", stream] if mode == "fleet" else []
        collector = Proc(["serve", "--port", "0", "--log-level", "warning", "--retention-interval", "0",
                          *common, *fleet], r"listening on (http://\S+)")
        assert collector.match is not None
        url = collector.match.group(1)
        check_every_device(url, secrets)
        me = psutil.Process()
        backends0: dict[int, float] = {}

        def sample() -> dict[str, float]:
            nonlocal backends0
            t, c, switches = me.cpu_times(), collector.ps.cpu_times(), collector.ps.num_ctx_switches()
            cpu = {"collector": c.user + c.system, "_collector system": c.system,
                   "_collector switches": switches.voluntary + switches.involuntary}
            if admin is not None:
                backends = backend_cpu(admin, db)
                backends0 = backends0 or backends
                cpu["postgres (its backends)"] = sum(v - backends0.get(pid, 0.0) for pid, v in backends.items())
                cpu["postgres (all)"] = service_cpu("postgres") + exited_postgres_cpu()
                cpu["_pg sessions"] = admin.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s",
                                                    (db,)).fetchone()[0]
                cpu["nats-server"] = service_cpu("nats-server")
            cpu[f"client ({args.client}, this process)"] = t.user + t.system
            return cpu

        profiler = Profiler(collector.popen.pid, round(args.seconds), args.profile_rate, work) if args.profile else None

        def sample_and_profile() -> dict[str, float]:
            cpu = sample()
            if profiler is not None:
                profiler.start()  # at the window's start (a no-op at its end)
            return cpu

        loaded = asyncio.run(poll(url, secrets, args.clients, args.client, args.warmup, args.seconds,
                                  sample_and_profile))
        profile, native = profiler.results() if profiler is not None else (None, None)
        single = None
        if args.single_seconds > 0:
            single = asyncio.run(poll(url, secrets, 1, args.client, 0.5, args.single_seconds, sample))
        return Result(mode, args.devices, args.employees or args.devices, args.client, loaded, single, profile,
                      native)
    finally:
        if collector is not None:
            collector.stop()
        tear_down(args.nats if mode == "fleet" else None, stream, admin, db, work, keep=args.keep)


# -- where the collector's CPU goes -----------------------------------------------------------------------

class Profiler:
    """py-spy --gil (the collector's Python, by function) and, where installed, perf (its CPU by kind of
    code: interpreter, kernel, SQLite/libpq, libc) on the collector for ``seconds`` from ``start()``."""

    def __init__(self, pid: int, seconds: int, rate: int, work: Path):
        self.pid, self.seconds, self.rate = pid, seconds, rate
        self.spy_out, self.perf_out = work / "py-spy.txt", work / "perf.data"
        self.spy: subprocess.Popen | None = None
        self.perf: subprocess.Popen | None = None

    def start(self) -> None:
        if self.spy is not None:
            return
        self.spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(self.pid),
                                     "--gil", "--format", "raw", "--output", str(self.spy_out), "--rate",
                                     str(self.rate), "--duration", str(self.seconds)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if shutil.which("perf"):
            self.perf = subprocess.Popen(["perf", "record", "-F", "499", "-p", str(self.pid), "-o",
                                          str(self.perf_out), "--", "sleep", str(self.seconds)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def results(self) -> tuple[dict[str, float] | None, dict[str, float] | None]:
        profile = native = None
        if self.spy is not None:
            _, err = self.spy.communicate(timeout=120)
            if self.spy.returncode != 0 or not self.spy_out.exists():
                print(f"py-spy failed ({self.spy.returncode}): {err.strip()[-300:]}", file=sys.stderr)
            else:
                profile = breakdown(self.spy_out.read_text())
        if self.perf is not None:
            native = native_split(self.perf, self.perf_out)
        return profile, native


# py-spy --gil samples the thread holding the GIL, i.e. the collector's Python (its idle detection,
# needed to sample every running thread, does not work here). A sample belongs to the first of these
# (in order) with a marker anywhere in its stack; a marker is "function (path" as py-spy names a
# frame, so it matches any line of that function.
PURPOSES: list[tuple[str, tuple[str, ...]]] = [
    ("credential: SHA-256 of the secret + compare", ("_hash (deskcorder/store/_people/_enrolment.py", "compare_digest")),
    ("credential: device_credentials lookup", ("authenticate (deskcorder/store/_people/_enrolment.py",)),
    ("status: policy lookup: parse_policy (TOML, every poll)", ("parse_policy (deskcorder/policy",)),
    ("status: policy lookup: SQL", ("current_policy (deskcorder/store/_people/_consent.py",)),
    ("status: latest consent lookup", ("_latest_consent (deskcorder/store/_people/_consent.py",)),
    ("status: owner lookup (device, employee, key, pause) + reason",
     ("device_status (deskcorder/store/_people/_consent.py",)),
    ("new DB connections (beyond the pool: connect, SQLite PRAGMAs, close)",
     ("_sqlite_pragmas (deskcorder", "__connect (sqlalchemy", "_close_connection (sqlalchemy")),
    ("pool checkout/return (EventStore._db)", ("_db (deskcorder/store/_store.py",)),
    ("answer: as_json + FastAPI validate/serialize/render", ("as_json (deskcorder", "serialize_response (fastapi",
                                                             "render (starlette", "jsonable_encoder (fastapi")),
]
# The rest by the innermost frame of one of these layers.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("worker-thread hand-offs (anyio, queue)", ("(anyio/", "(threading.py", "(queue.py", "(starlette/concurrency")),
    ("HTTP: uvicorn + h11 (parse request, write response)", ("(uvicorn/", "(h11/")),
    ("FastAPI/Starlette: middleware, routing, request", ("(fastapi/", "(starlette/", "(pydantic")),
    ("asyncio event loop and sockets", ("(asyncio/", "(selectors.py",)),
    ("other deskcorder code", ("(deskcorder/",)),
]


def breakdown(raw: str) -> dict[str, float]:
    """py-spy's collapsed stacks (``frame;frame;... count``) summed by PURPOSES and LAYERS, as shares."""
    totals: collections.Counter = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            totals[_category(stack.split(";"))] += int(count)
    samples = sum(totals.values())
    return {name: n / max(1, samples) for name, n in totals.most_common()}


def _category(frames: list[str]) -> str:
    for name, markers in PURPOSES:
        if any(m in f for f in frames for m in markers):
            return name
    for frame in reversed(frames):
        for name, markers in LAYERS:
            if any(m in frame for m in markers):
                return name
    return "other (" + frames[-1].split(" (", 1)[-1].split("/", 1)[0].split(".py", 1)[0] + ")"


PYTHON = "Python (the interpreter and compiled extensions: SQLAlchemy's Cython, pydantic-core)"
KERNEL = "kernel: thread wake-ups and context switches (futex), sockets"
DB_C = "the database client's C code (SQLite's engine, which runs without the GIL; libpq)"
LIBC = "libc: malloc, mutexes (GIL hand-over)"


def native_split(perf: subprocess.Popen, data: Path) -> dict[str, float] | None:
    """Shares of the perf samples by kind of code: the interpreter, the kernel, the database's C code, libc."""
    _, err = perf.communicate(timeout=60)
    if perf.returncode != 0 or not data.exists():
        print(f"perf record failed ({perf.returncode}): {err.strip()[-300:]}", file=sys.stderr)
        return None
    report = subprocess.run(["perf", "report", "-i", str(data), "--sort", "dso", "--stdio", "--no-children",
                             "-g", "none"], capture_output=True, text=True)
    shares: collections.Counter = collections.Counter()
    for line in report.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith("%") and not line.startswith("#"):
            dso, share = " ".join(parts[1:]), float(parts[0].rstrip("%")) / 100
            kind = (KERNEL if "kernel" in dso else DB_C if "sqlite" in dso or "libpq" in dso
                    else LIBC if dso.startswith(("libc.", "libc-", "ld-linux")) else PYTHON)
            shares[kind] += share
    total = sum(shares.values())
    return {kind: n / total for kind, n in shares.most_common()} if total else None


# -- to 70,000 devices ------------------------------------------------------------------------------------

def fleet_arithmetic(results: list[Result], n: int) -> None:
    print(f"\n== to {n:,} devices: cores busy with status polls alone, at the CPU per poll measured above ==")
    cols: list[tuple[str, float]] = []  # (column, CPU seconds per poll)
    for r in results:
        name = "embedded" if r.mode == "embedded" else "collectors"
        cols.append((f"{name} {r.loaded.connections}x", r.loaded.per_poll("collector")))
        if r.single is not None:
            cols.append((f"{name} 1x", r.single.per_poll("collector")))
        if r.mode == "fleet":
            cols.append(("PostgreSQL", r.loaded.per_poll("postgres (all)")))
            cols.append(("fleet total", r.loaded.per_poll("collector") + r.loaded.per_poll("postgres (all)")))
    print("  (Nx: at the CPU per poll measured with N polls in flight; fleet total: collectors Nx + PostgreSQL)")
    width = max(13, *(len(name) for name, _ in cols))
    print(f"  {'poll every':>10} {'polls/s':>9}  " + "  ".join(f"{name:>{width}}" for name, _ in cols))
    for interval in INTERVALS_S:
        rate = n / interval
        print(f"  {interval:>8g} s {rate:>9,.0f}  " + "  ".join(f"{rate * per:>{width - 6},.1f} cores"
                                                              for _, per in cols))
    for r in results:
        per = r.loaded.per_poll("collector")
        print(f"  {r.mode}: one collector core ({r.loaded.connections} in flight) serves {1 / per:,.0f} polls/s = "
              + ", ".join(f"{interval / per:,.0f} devices at {interval:g} s" for interval in INTERVALS_S))
    if any(r.mode == "embedded" for r in results):
        print("  (embedded mode is one collector process, about one core of Python: the devices per core above "
              "are all it can serve)")
    print("  (at 100 % busy; provision ~1.5x for bursts and a lost node. PostgreSQL: every postgres process, "
          "exited backends included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["embedded", "fleet", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed polling per mode")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed polling first")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--employees", type=int, default=0, help="people owning the devices (0: one per device)")
    parser.add_argument("--clients", type=int, default=16, help="keep-alive connections polling at once")
    parser.add_argument("--client", choices=["sockets", "httpx"], default="sockets")
    parser.add_argument("--single-seconds", type=float, default=3.0,
                        help="then one connection alone for this long (latency without queueing; 0: skip)")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy (and perf, if installed) on the collector during the timed phase")
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second")
    add_server_options(parser)
    parser.add_argument("--fleet-devices", type=int, default=70_000)
    parser.add_argument("--keep", action="store_true", help="keep the data dirs")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    modes = ["embedded", "fleet"] if args.mode == "both" else [args.mode]
    print(f"{os.cpu_count()} cores; {args.devices} devices, {args.clients} connections, "
          f"{args.warmup:g} s warm-up + {args.seconds:g} s per mode")
    results = [run(mode, args) for mode in modes]
    for r in results:
        r.report()
    fleet_arithmetic(results, args.fleet_devices)
    if args.json:
        def phase(ph: Phase | None) -> dict[str, Any] | None:
            return None if ph is None else {
                "connections": ph.connections, "seconds": ph.seconds, "polls_per_s": ph.polls / ph.seconds,
                "p50_ms": pct(ph.latencies, 0.5), "p99_ms": pct(ph.latencies, 0.99), "errors": ph.errors,
                "per_1000_polls": {k.lstrip("_"): ph.per_poll(k) * 1000 for k in ph.cpu}}

        args.json.write_text(json.dumps([{"mode": r.mode, "devices": r.devices, "employees": r.employees,
                                          "client": r.client, "loaded": phase(r.loaded),
                                          "one_at_a_time": phase(r.single), "profile": r.profile,
                                          "native": r.native} for r in results], indent=2))


if __name__ == "__main__":
    main()
