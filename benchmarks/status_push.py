"""Status pushed: 10,000 agents held on one collector; how soon a withdrawal reaches them, what idling costs.

    python benchmarks/status_push.py [--agents 10000] [--employees 1000] [--withdrawals 60] [--wait 50]
        [--idle-seconds 120] [--poll-seconds 15] [--fleet-agents 2000] [--postgres URL] [--keep]

One `deskcorder serve` (SQLite control database, data dir on /dev/shm when
there is one, so enrolment is not fsync-bound) with ``--agents`` enrolled
devices, dealt to ``--employees`` consenting people. This process simulates
the agents: one asyncio task and one keep-alive TCP connection per agent,
raw HTTP/1.1 as the agent sends it (``GET /v1/devices/{id}/status``, then
``?wait=50&since=<status_version>`` again after every answer, 304 or 200),
opened 250 at a time.

Phases, all in the same run against the same collector:
    poll reference  before any agent is held: 16 connections poll the devices
                    round-robin with the old plain request (closed loop) for
                    ``--poll-seconds``; the collector's CPU per poll gives what
                    an agent costs an hour at the old cadences (0.5 s typing,
                    30 s idle, 10 s on a fleet)
    held            every agent connects and is held; the collector's RSS
    idle            ``--idle-seconds`` with nothing changing: the collector's
                    process CPU clock (user + system) over the window, per
                    held agent per hour, and per renewal (the 304s counted)
    withdrawals     ``--withdrawals`` people withdraw over the API (one after
                    another, 0.2 s apart, with their portal password); each of
                    their devices' latency is from the withdrawal's
                    ``recorded_at`` (the collector's clock, this machine's) to
                    the moment its answer arrived here: p50, p99, max

Fleet variant (``--fleet-agents``, 0 to skip): two collectors on one fresh
PostgreSQL database (dropped afterwards), agents split between them;
withdrawals made on collector A over the API, pauses made by this process on
the database (as the CLI on an admin's host would), then a new policy that
every agent must hear; latency as above (pauses from their ``paused_at``,
the policy from its ``created_at``), split by whether the agent was held on
the collector that took the change.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import dataclasses
import datetime as dt
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from load_generator import ACTOR, POLICY, Proc, add_server_options, tear_down  # noqa: E402
from status_poll import pct  # noqa: E402

from deskcorder.store import EventStore  # noqa: E402

PASSWORD = "status-push-bench-1"
RAMP = 250  # agents connecting at once (the listen backlog is uvicorn's 2048)
POLL_CONNECTIONS = 16
CADENCES_S = {"typing (0.5 s)": 0.5, "fleet default (10 s)": 10.0, "idle desk (30 s)": 30.0}


# -- simulated agents -----------------------------------------------------------------------------------

@dataclasses.dataclass
class Book:
    """What the agents saw: each device's answers after its first (wall time, answer), renewals, errors."""

    seen: dict[str, list[tuple[float, dict[str, Any]]]] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(list))
    connected: int = 0
    held: int = 0
    renewals: int = 0
    errors: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    stopping: bool = False


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
                    ) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return int(head[9:12]), (await reader.readexactly(length) if length else b"")


async def agent(host: str, port: int, device: str, secret: str, wait: float, book: Book) -> None:
    """One desk: the first answer, then held requests for ever, each sent as soon as the last is answered."""
    head = f"Host: {host}:{port}\r\nAuthorization: Bearer {device}:{secret}\r\nUser-Agent: deskcorder-agent\r\n\r\n"
    version: str | None = None
    while not book.stopping:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            book.errors[type(exc).__name__] += 1
            await asyncio.sleep(1.0)
            continue
        try:
            while not book.stopping:
                query = f"?wait={wait:g}&since={version}" if version else ""
                status, body = await _exchange(reader, writer, (f"GET /v1/devices/{device}/status{query} HTTP/1.1\r\n"
                                                                + head).encode())
                if status == 304:
                    book.renewals += 1
                    continue
                if status != 200:
                    book.errors[status] += 1
                    await asyncio.sleep(1.0)
                    continue
                answer = json.loads(body)
                if version is None:
                    book.connected += 1
                else:
                    book.seen[device].append((time.time(), answer))
                version = answer["status_version"]
        except (OSError, asyncio.IncompleteReadError) as exc:
            if not book.stopping:
                book.errors[type(exc).__name__] += 1
        finally:
            writer.close()


async def connect_all(targets: list[tuple[str, int]], secrets: dict[str, str], wait: float, book: Book
                      ) -> list[asyncio.Task]:
    """Start one agent per device (round-robin over ``targets``), RAMP at a time, each group answered first."""
    tasks = []
    devices = list(secrets)
    for start in range(0, len(devices), RAMP):
        group = devices[start:start + RAMP]
        for i, device in enumerate(group, start):
            host, port = targets[i % len(targets)]
            tasks.append(asyncio.create_task(agent(host, port, device, secrets[device], wait, book)))
        deadline = time.monotonic() + 120
        while book.connected < start + len(group):
            if time.monotonic() > deadline:
                raise SystemExit(f"only {book.connected} of {start + len(group)} agents answered; errors {book.errors}")
            await asyncio.sleep(0.01)
    await asyncio.sleep(2.0)  # the last group's held requests are in
    return tasks


async def poll_reference(host: str, port: int, secrets: dict[str, str], seconds: float) -> int:
    """The old plain poll, closed loop on POLL_CONNECTIONS keep-alive connections; returns the polls answered."""
    requests = [(f"GET /v1/devices/{d}/status HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {d}:{s}\r\n"
                 f"User-Agent: deskcorder-agent\r\n\r\n").encode() for d, s in secrets.items()]
    stop = time.monotonic() + seconds
    done = 0

    async def one(offset: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(host, port)
        i = offset
        while time.monotonic() < stop:
            status, _ = await _exchange(reader, writer, requests[i % len(requests)])
            i += POLL_CONNECTIONS
            done += status == 200
        writer.close()

    await asyncio.gather(*(one(k) for k in range(POLL_CONNECTIONS)))
    return done


# -- changes and their latency ---------------------------------------------------------------------------

def _wall(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


async def withdraw(url: str, handle: str, answered: dict[str, float] | None = None) -> float:
    """Withdraw over the API as the person; the withdrawal's recorded_at (epoch seconds). ``answered``: when the
    collector's answer arrived, by handle (a commit slowed by the machine shows there, not in the push)."""
    import httpx

    auth = "Basic " + base64.b64encode(f"{handle}:{PASSWORD}".encode()).decode()
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        r = await client.post(f"/v1/employees/{handle}/consent", json={"action": "withdraw"},
                              headers={"Authorization": auth})
    if r.status_code != 200:
        raise SystemExit(f"withdrawal of {handle}: {r.status_code} {r.text}")
    if answered is not None:
        answered[handle] = time.time()
    return _wall(r.json()["recorded_at"])


def latencies(book: Book, devices: list[str], since: float, what: Any) -> tuple[list[float], int]:
    """Seconds from ``since`` to each device's first answer after it for which ``what(answer)``; how many missed."""
    found, missed = [], 0
    for device in devices:
        times = [t for t, answer in book.seen.get(device, []) if t >= since - 1.0 and what(answer)]
        if times:
            found.append(max(0.0, times[0] - since))
        else:
            missed += 1
    return found, missed


def summary(name: str, values: list[float], missed: int) -> str:
    return (f"  {name:<44} n={len(values):>6}  p50 {pct(values, 0.5):7.1f} ms  p99 {pct(values, 0.99):7.1f} ms  "
            f"max {max(values) * 1000 if values else float('nan'):7.1f} ms" + (f"  MISSED {missed}" if missed else ""))


def enrol_devices(store: EventStore, devices: list[str], employees: int) -> dict[str, str]:
    """Consenting people (through the store's API) with the devices dealt to them round-robin; each device's secret.

    The devices go in as the rows an enrolment writes (``devices``, ``device_credentials``), in one
    transaction: enrolling 10,000 through tokens takes 20-60 ms each on this machine, minutes that
    measure nothing this benchmark is about. The status endpoint reads exactly these rows.
    """
    import secrets as random_secrets

    from deskcorder.store._db._tables import device_credentials
    from deskcorder.store._db._tables import devices as device_rows
    from deskcorder.store._people._enrolment import _hash

    if store.current_policy().version == 0:
        store.set_policy(POLICY, actor=ACTOR)
    version = store.current_policy().version
    handles = [f"person-{i:04d}" for i in range(employees)]
    ids = [store.add_employee(handle, actor=ACTOR).employee_id for handle in handles]
    for handle in handles:
        store.record_consent(handle, "give", policy_version=version, method="api", actor=ACTOR)
    secrets = {d: random_secrets.token_urlsafe(32) for d in devices}
    now = dt.datetime.now(dt.timezone.utc)
    with store._engine.begin() as conn:
        conn.execute(device_rows.insert(), [{"device_id": d, "employee_id": ids[i % employees], "hostname": f"{d}.bench",
                                             "registered_at": now, "n_batches": 0, "n_events": 0}
                                            for i, d in enumerate(devices)])
        conn.execute(device_credentials.insert(), [{"device_id": d, "employee_id": ids[i % employees],
                                                    "secret_hash": _hash(secrets[d]), "created_at": now}
                                                   for i, d in enumerate(devices)])
    return secrets


def people_of(secrets: dict[str, str], employees: int) -> dict[str, list[str]]:
    """Each person's devices, as enrol_devices dealt them (round-robin)."""
    devices = list(secrets)
    return {f"person-{k:04d}": devices[k::employees] for k in range(employees)}


def give_passwords(store: EventStore, handles: list[str]) -> None:
    for handle in handles:
        store.portal.set_password(handle, PASSWORD, role="employee", actor=ACTOR)


# -- the runs ------------------------------------------------------------------------------------------------

def _serve(data_dir: Path, *extra: str) -> tuple[Proc, str, int]:
    proc = Proc(["serve", "--init", "--data-dir", str(data_dir), "--port", "0", "--retention-interval", "0",
                 "--log-level", "warning", *extra], r"listening on (http://\S+)")
    assert proc.match is not None
    url = proc.match.group(1)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return proc, url, int(port)


async def single(args: argparse.Namespace, work: Path) -> None:
    data_dir = work / "data"
    devices = [f"push-bench-{i:05d}" for i in range(args.agents)]
    started = time.perf_counter()
    with EventStore(data_dir) as store:
        secrets = enrol_devices(store, devices, args.employees)
        people = people_of(secrets, args.employees)
        chosen = list(people)[:args.withdrawals]
        give_passwords(store, chosen)
    print(f"enrolled {len(devices)} devices of {args.employees} people in {time.perf_counter() - started:.0f} s",
          flush=True)
    proc, url, port = _serve(data_dir)
    try:
        cpu0 = proc.cpu()
        polls = await poll_reference("127.0.0.1", port, secrets, args.poll_seconds)
        poll_ms = (proc.cpu() - cpu0) / max(1, polls) * 1000
        rss0 = proc.ps.memory_info().rss
        book = Book()
        started = time.perf_counter()
        tasks = await connect_all([("127.0.0.1", port)], secrets, args.wait, book)
        rss1 = proc.ps.memory_info().rss
        print(f"{book.connected} agents held after {time.perf_counter() - started:.0f} s; collector RSS "
              f"{rss0 / 2**20:.0f} -> {rss1 / 2**20:.0f} MiB ({(rss1 - rss0) / len(devices) / 1024:.1f} KiB per held "
              f"agent); errors {dict(book.errors) or 'none'}", flush=True)
        await asyncio.sleep(3.0)
        cpu0, renewals0, t0 = proc.cpu(), book.renewals, time.perf_counter()
        await asyncio.sleep(args.idle_seconds)
        idle_cpu, idle_s, renewals = proc.cpu() - cpu0, time.perf_counter() - t0, book.renewals - renewals0
        per_hour_ms = idle_cpu / len(devices) / idle_s * 3600 * 1000
        withdrawn_at: dict[str, float] = {}
        answered: dict[str, float] = {}
        for handle in chosen:
            withdrawn_at[handle] = await withdraw(url, handle, answered)
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # every answer had time to arrive
        lat: list[float] = []
        after_answer: list[float] = []
        missed = 0
        for handle in chosen:
            found, lost = latencies(book, people[handle], withdrawn_at[handle], lambda a: not a["recording_allowed"])
            lat += found
            missed += lost
            after_answer += [t + withdrawn_at[handle] - answered[handle] for t in found]
        book.stopping = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        proc.stop()
    print(f"\n== one collector (SQLite), {len(devices)} held agents, wait {args.wait:g} s")
    print(summary(f"withdrawal -> agent ({len(chosen)} people)", lat, missed))
    print(f"  (the same from the withdrawal's HTTP answer: p50 {pct(after_answer, 0.5):.1f} ms, p99 "
          f"{pct(after_answer, 0.99):.1f} ms; the recorded_at-to-answer part p99 "
          f"{pct([answered[h] - withdrawn_at[h] for h in chosen], 0.99):.1f} ms)")
    print(f"  idle: collector CPU {idle_cpu:.2f} s over {idle_s:.0f} s = {per_hour_ms:.1f} ms per held agent per "
          f"hour; {renewals} renewals ({idle_cpu / max(1, renewals) * 1000:.2f} ms each)")
    print(f"  reference, the old poll in this run: {poll_ms:.2f} ms of collector CPU per poll ({polls} polls on "
          f"{POLL_CONNECTIONS} connections), so per agent per hour:")
    for name, every in CADENCES_S.items():
        cost = poll_ms * 3600 / every
        print(f"    {name:<22} {cost:9.1f} ms   (push idle: {per_hour_ms / cost:.3f} of it, x{cost / per_hour_ms:.0f})")
    print(f"  errors seen by the agents: {dict(book.errors) or 'none'}", flush=True)


async def fleet(args: argparse.Namespace, work: Path) -> None:
    import psycopg

    admin = psycopg.connect(args.postgres, autocommit=True)
    db = f"deskcorder_push_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{db}"')
    database_url = args.postgres.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + db
    data_dir = work / "fleet-data"
    employees = max(1, args.fleet_agents // 10)
    procs: list[Proc] = []
    try:
        store = EventStore(data_dir, database_url=database_url)
        devices = [f"push-fleet-{i:05d}" for i in range(args.fleet_agents)]
        secrets = enrol_devices(store, devices, employees)
        people = people_of(secrets, employees)
        handles = list(people)
        withdrawn, paused = handles[:min(20, employees // 3)], handles[-min(20, employees // 3):]
        give_passwords(store, withdrawn)
        a, b = _serve(data_dir, "--database-url", database_url), _serve(data_dir, "--database-url", database_url)
        procs = [a[0], b[0]]
        book = Book()
        tasks = await connect_all([("127.0.0.1", a[2]), ("127.0.0.1", b[2])], secrets, args.wait, book)
        on_a = set(devices[0::2])
        withdrawn_at = {}
        for handle in withdrawn:
            withdrawn_at[handle] = await withdraw(a[1], handle)
            await asyncio.sleep(0.2)
        pauses = {}
        for handle in paused:
            pauses[handle] = store.portal.pause_recording(handle, actor=ACTOR).timestamp()
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)
        version = store.current_policy().version + 1
        policy = store.set_policy(POLICY.replace("version = 1", f"version = {version}", 1), actor=ACTOR)
        await asyncio.sleep(max(5.0, args.fleet_agents / 1000))
        results = []
        for name, handles_, since, what in [
                ("withdrawal on A", withdrawn, lambda h: withdrawn_at[h],
                 lambda ans: not ans["recording_allowed"] and (ans.get("consent") or {}).get("action") == "withdraw"),
                ("pause by another process", paused, lambda h: pauses[h],
                 lambda ans: "paused" in ans["reason"])]:
            split: dict[str, tuple[list[float], int]] = {"held on A": ([], 0), "held on B": ([], 0)}
            for handle in handles_:
                at = since(handle)
                for where, group in (("held on A", [d for d in people[handle] if d in on_a]),
                                     ("held on B", [d for d in people[handle] if d not in on_a])):
                    found, lost = latencies(book, group, at, what)
                    split[where] = (split[where][0] + found, split[where][1] + lost)
            results += [summary(f"{name}, {where}", *split[where]) for where in split]
        found, lost = latencies(book, devices, policy.created_at.timestamp(),
                                lambda ans: ans["policy_version"] == version)
        results.append(summary(f"new policy -> every agent", found, lost))
        book.stopping = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        store.close()
        print(f"\n== fleet: two collectors on one PostgreSQL database, {len(devices)} agents split between them")
        print("\n".join(results))
        print(f"  errors seen by the agents: {dict(book.errors) or 'none'}", flush=True)
    finally:
        for proc in procs:
            proc.stop()
        tear_down(None, None, admin, db, work, keep=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--employees", type=int, default=1_000, help="people the agents are dealt to")
    parser.add_argument("--withdrawals", type=int, default=60, help="people who withdraw (each with their devices)")
    parser.add_argument("--wait", type=float, default=50.0, help="the agents' ?wait= (the agent's WAIT_S)")
    parser.add_argument("--idle-seconds", type=float, default=120.0)
    parser.add_argument("--poll-seconds", type=float, default=15.0)
    parser.add_argument("--fleet-agents", type=int, default=2_000, help="0: no fleet variant")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs")
    add_server_options(parser)
    args = parser.parse_args()
    shm = Path("/dev/shm")
    work = Path(tempfile.mkdtemp(prefix="deskcorder-push-", dir=shm if shm.is_dir() else None))
    try:
        asyncio.run(single(args, work))
        if args.fleet_agents:
            asyncio.run(fleet(args, work))
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
