"""Fleet mode: `deskcorder serve --nats` collectors publish to NATS JetStream, `deskcorder writer`s store.

Everything is real: the NATS server with JetStream (DESKCORDER_TEST_NATS, default
nats://127.0.0.1:4222), a fresh PostgreSQL database per test as the shared control
database (DESKCORDER_TEST_POSTGRES), one shared data dir, and every collector and
writer its own `python -m deskcorder` process. Each test uses its own stream,
deleted afterwards. Without NATS or PostgreSQL the tests skip, except on CI
(CI set), where they fail: CI always has both.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import msgpack
import pyarrow.compute as pc
import pytest

from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.store import EventStore
from deskcorder.wire import MSGPACK, encode_batch

from .helpers import READ, _read_until, _stop, auth_headers, enrol, next_utc_midnight_ns, remember_collector, \
    spawn_collector

NATS_URL = os.environ.get("DESKCORDER_TEST_NATS", "nats://127.0.0.1:4222")
_PG_ADMIN = os.environ.get("DESKCORDER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
MIDNIGHT = next_utc_midnight_ns()  # events stamped after the consent the test gives
_WRITER_READY = re.compile(r"deskcorder writer consuming (\S+)")


# -- fixtures: the real servers -------------------------------------------------------------------

def _unavailable(what: str) -> None:
    # CI always has the servers; skipping there would hide a broken fleet mode.
    (pytest.fail if os.environ.get("CI") else pytest.skip)(what)


@pytest.fixture
def nats_url() -> str:
    parts = urllib.parse.urlsplit(NATS_URL)
    try:
        socket.create_connection((parts.hostname, parts.port or 4222), timeout=2).close()
    except OSError as exc:
        _unavailable(f"no NATS server at {NATS_URL}: {exc}")
    return NATS_URL


@pytest.fixture
def stream(nats_url: str) -> Iterator[str]:
    name = f"DESKCORDER_TEST_{uuid.uuid4().hex[:10].upper()}"
    yield name
    asyncio.run(_delete_stream(nats_url, name))


@pytest.fixture
def pg_url() -> Iterator[str]:
    import psycopg

    try:
        admin = psycopg.connect(_PG_ADMIN, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError as exc:
        _unavailable(f"no PostgreSQL at {_PG_ADMIN}: {exc}")
    name = f"deskcorder_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


async def _delete_stream(url: str, name: str) -> None:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        try:
            await nc.jetstream().delete_stream(name)
        except NotFoundError:
            pass
    finally:
        await nc.close()


def stream_state(url: str, name: str) -> dict[str, int]:
    """How many messages the stream holds, and how many of them were ever redelivered to a writer."""
    async def query() -> dict[str, int]:
        import nats
        from nats.js.errors import NotFoundError

        nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
        try:
            js = nc.jetstream()
            info = await js.stream_info(name)
            try:
                redelivered = (await js.consumer_info(name, "writers")).num_redelivered or 0
            except NotFoundError:
                redelivered = 0
            return {"messages": info.state.messages, "redelivered": redelivered}
        finally:
            await nc.close()

    return asyncio.run(query())


# -- processes -----------------------------------------------------------------------------------

class Writer:
    """A `deskcorder writer` process; ``stop`` ends it with SIGTERM and returns its closing line."""

    def __init__(self, data_dir: Path, pg_url: str, nats_url: str, stream: str, *extra: str,
                 env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deskcorder", "writer", "--nats", nats_url, "--data-dir", str(data_dir),
             "--database-url", pg_url, "--stream", stream, "--log-level", "warning", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})
        self.lines: list[str] = []
        ready = threading.Event()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line)
                if _WRITER_READY.search(line):
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(30) or not any(f"consuming {stream} " in line for line in self.lines):
            self.proc.kill()
            raise RuntimeError(f"the writer did not start; output:\n{''.join(self.lines)}")

    def stop(self) -> str:
        _stop(self.proc)
        time.sleep(0.1)  # let the pump read the last line
        return next((line for line in self.lines if "writer stopped" in line), "".join(self.lines[-20:]))


def start_fleet_collector(data_dir: Path, nats_url: str, stream: str, *extra: str) -> tuple[subprocess.Popen, str]:
    return spawn_collector(data_dir, 0, "--nats", nats_url, "--stream", stream, "--retention-interval", "0",
                           "--log-level", "warning", *extra)


# -- batches ---------------------------------------------------------------------------------------

def make_events(session: str, start: int, n: int) -> list[Event]:
    """Typing with some pointer moves and a click, 5 ms apart, from tomorrow 00:00 UTC."""
    events = []
    for seq in range(start, start + n):
        t = seq * 5_000_000
        r = seq % 10
        if r < 6:
            kind = EventKind.KEY_DOWN if r % 2 == 0 else EventKind.KEY_UP
            events.append(Event(session, seq, t, MIDNIGHT + t, kind, key="e", char="e", vk=101))
        elif r < 9:
            events.append(Event(session, seq, t, MIDNIGHT + t, EventKind.MOVE, x=seq % 1920, y=seq % 1080))
        else:
            events.append(Event(session, seq, t, MIDNIGHT + t, EventKind.BUTTON_DOWN, button="left", x=5, y=5))
    return events


def body(batch_id: str, device_id: str, events: list[Event]) -> bytes:
    return encode_batch(batch_id, device_id, events_to_columns(events))


def post(client: httpx.Client, url: str, payload: bytes, *, as_device: str | None = None) -> httpx.Response:
    """POST with the credential of the batch's device (or of ``as_device``); none if it was never enrolled."""
    device_id = as_device or msgpack.unpackb(payload)["device_id"]
    try:
        auth = auth_headers(url, device_id)
    except KeyError:
        auth = {}
    return client.post(f"{url}/v1/batches", content=payload, headers={"Content-Type": MSGPACK, **auth})


# -- the tests ---------------------------------------------------------------------------------------

DEVICES = [f"fleet-device-{i:02d}" for i in range(4)]
BATCHES_PER_DEVICE = 15
EVENTS_PER_BATCH = 400


def test_two_collectors_two_writers_store_every_acknowledged_event_once_when_a_writer_and_a_collector_die(
        tmp_path: Path, nats_url: str, stream: str, pg_url: str) -> None:
    data_dir = tmp_path / "data"
    with EventStore(data_dir, database_url=pg_url) as store:  # migrates the database before the fleet starts
        enrol(store, "alice", *DEVICES[:2])
        enrol(store, "bob", *DEVICES[2:])
    procs: list[subprocess.Popen] = []
    try:
        collectors = [start_fleet_collector(data_dir, nats_url, stream, "--database-url", pg_url) for _ in range(2)]
        procs += [proc for proc, _ in collectors]
        writers = [Writer(data_dir, pg_url, nats_url, stream, "--ack-wait", "2") for _ in range(2)]
        procs += [w.proc for w in writers]
        urls = [url for _, url in collectors]
        alive = list(urls)

        batches = [(f"{device}-batch-{i:03d}", device,
                    body(f"{device}-batch-{i:03d}", device, make_events(f"{device}-session", i * EVENTS_PER_BATCH,
                                                                        EVENTS_PER_BATCH)))
                   for i in range(BATCHES_PER_DEVICE) for device in DEVICES]
        acked: dict[str, int] = {}
        answers: list[dict[str, Any]] = []
        lock = threading.Lock()

        answer_lost: set[str] = set()

        def deliver(n: int, batch_id: str, payload: bytes) -> dict[str, Any]:
            """Post until a collector answers 200, moving to the other collector on errors, like an agent."""
            deadline = time.monotonic() + 30
            turn = n
            with httpx.Client(timeout=10) as client:
                while time.monotonic() < deadline:
                    url = alive[turn % len(alive)]
                    turn += 1
                    try:
                        response = post(client, url, payload)
                    except httpx.TransportError:
                        # That collector died, perhaps after JetStream acked its publish: the retry may then
                        # be answered as a duplicate, so this batch's "stored" may add up to 0.
                        with lock:
                            answer_lost.add(batch_id)
                        continue
                    if response.status_code == 200:
                        return response.json()
                    assert response.status_code in (429, 503), response.text
                    with lock:
                        answer_lost.add(batch_id)  # a 503 after a publish whose PubAck came late: the same
                    time.sleep(0.1)
            raise AssertionError("no collector acknowledged the batch within 30 s")

        def send(n: int, batch_id: str, payload: bytes) -> None:
            first = deliver(n, batch_id, payload)
            second = deliver(n + 1, batch_id, payload)  # every batch twice, to the other collector
            with lock:
                acked[batch_id] = first["stored"] + second["stored"]
                answers.extend([first, second])

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(send, n, batch_id, payload) for n, (batch_id, _, payload) in enumerate(batches)]
            for i, future in enumerate(futures):
                future.result()
                if i == len(futures) // 3:
                    # Frozen first, as a crashed machine would be, so that batches are delivered to it and
                    # never acked: JetStream must hand them to the other writer.
                    writers[0].proc.send_signal(signal.SIGSTOP)
                    time.sleep(0.5)
                    writers[0].proc.send_signal(signal.SIGKILL)
                if i == 2 * len(futures) // 3:
                    alive.remove(urls[1])
                    collectors[1][0].send_signal(signal.SIGKILL)

        total = len(batches) * EVENTS_PER_BATCH
        assert len(acked) == len(batches)
        # Each batch's two posts together accepted its events once: the repeat was a duplicate. A batch whose
        # answer was lost (its collector killed after the PubAck) was counted by nobody: 0, never twice.
        wrong = {b: n for b, n in acked.items()
                 if n != EVENTS_PER_BATCH and not (n == 0 and b in answer_lost)}
        assert not wrong, (wrong, sorted(answer_lost))
        assert all(a["queued"] or a["duplicate"] for a in answers)
        assert writers[0].proc.wait(5) == -signal.SIGKILL and collectors[1][0].wait(5) == -signal.SIGKILL

        with EventStore(data_dir, database_url=pg_url) as store:
            deadline = time.monotonic() + 30
            while sum(s.n_events for s in store.sessions()) < total and time.monotonic() < deadline:
                time.sleep(0.2)
            events = store.read_events(**READ)
        assert events.num_rows == total
        keys = pc.binary_join_element_wise(events["session_id"], pc.cast(events["seq"], "string"), "/")
        assert pc.count_distinct(keys).as_py() == total  # no (session_id, seq) twice
        for device in DEVICES:
            mine = events.filter(pc.equal(events["device_id"], device))
            assert mine["seq"].to_pylist() == list(range(BATCHES_PER_DEVICE * EVENTS_PER_BATCH))
        deadline = time.monotonic() + 10
        while (state := stream_state(nats_url, stream))["messages"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state["messages"] == 0  # every batch acked by a writer, so the work queue is empty
        survivor = writers[1].stop()
        # The killed writer held batches it never acked; the survivor got them again and stored them.
        redelivered = int(re.search(r"(\d+) redelivered", survivor).group(1))
        assert redelivered > 0, survivor
    finally:
        for proc in procs:
            _stop(proc)


def test_fleet_collector_refuses_unconsented_devices_and_publishes_a_repeated_batch_once(
        tmp_path: Path, nats_url: str, stream: str, pg_url: str) -> None:
    data_dir = tmp_path / "data"
    with EventStore(data_dir, database_url=pg_url) as store:
        enrol(store, "alice", "fleet-device-a")
        enrol(store, "carol", "fleet-device-c", consent=False)  # enrolled, never consented
    proc, url = start_fleet_collector(data_dir, nats_url, stream, "--database-url", pg_url)
    writer = None
    try:
        with httpx.Client(timeout=10) as client:
            events = make_events("session-a", 0, 50)
            refused = post(client, url, body("batch-carol-1", "fleet-device-c", make_events("session-c", 0, 5)))
            assert refused.status_code == 403 and refused.json()["field"] == "device_id"
            unknown = post(client, url, body("batch-nobody-1", "fleet-device-x", events))
            assert unknown.status_code == 401  # not enrolled: no credential
            # Every collector of the fleet authenticates against the shared database: carol's device
            # cannot pass off a batch as alice's.
            forged = post(client, url, body("batch-forged-1", "fleet-device-a", events), as_device="fleet-device-c")
            assert forged.status_code == 403 and forged.json()["field"] == "device_id"
            assert stream_state(nats_url, stream)["messages"] == 0  # refused before publishing
            # A fleet collector tells its agents to upload every minute and ask every 10 s (status polls
            # dominate a fleet's CPU at the agents' own 0.5 s: docs/benchmarks.md).
            status = client.get(f"{url}/v1/devices/fleet-device-a/status", headers=auth_headers(url, "fleet-device-a"))
            assert status.json()["agent"] == {"upload_interval_s": 60.0, "status_poll_s": 10.0}

            first = post(client, url, body("batch-alice-1", "fleet-device-a", events))
            again = post(client, url, body("batch-alice-1", "fleet-device-a", events))
            assert first.json() == {"batch_id": "batch-alice-1", "stored": 50, "duplicate": False, "queued": True}
            assert again.json() == {"batch_id": "batch-alice-1", "stored": 0, "duplicate": True, "queued": True}
            assert stream_state(nats_url, stream)["messages"] == 1  # JetStream kept the repeat out

            # The same id with other content cannot be recognised before it is stored: it is queued,
            # and the writer refuses it (audited) while storing the first.
            other = post(client, url, body("batch-alice-1", "fleet-device-a", make_events("session-a", 50, 5)))
            assert other.status_code == 200
            writer = Writer(data_dir, pg_url, nats_url, stream, "--concurrency", "1")  # in stream order
            deadline = time.monotonic() + 20
            while stream_state(nats_url, stream)["messages"] and time.monotonic() < deadline:
                time.sleep(0.2)

            # Once stored, a repeat is answered from the store and a conflicting id synchronously.
            stored_again = post(client, url, body("batch-alice-1", "fleet-device-a", events))
            assert stored_again.json() == {"batch_id": "batch-alice-1", "stored": 0, "duplicate": True,
                                           "queued": False}
            conflict = post(client, url, body("batch-alice-1", "fleet-device-a", make_events("session-a", 50, 5)))
            assert conflict.status_code == 409 and conflict.json()["field"] == "batch_id"
        with EventStore(data_dir, database_url=pg_url) as store:
            assert store.read_events(**READ)["seq"].to_pylist() == list(range(50))
            refusals = store.audit_entries(action="batch.refused")
        assert [e.details["batch_id"] for e in refusals] == ["batch-alice-1"]
        assert refusals[0].details["kind"] == "conflict"
    finally:
        _stop(proc)
        if writer is not None:
            writer.stop()


def test_fleet_collector_answers_503_and_acknowledges_nothing_while_nats_is_unreachable(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead_nats = f"nats://127.0.0.1:{s.getsockname()[1]}"
    data_dir = tmp_path / "data"
    with EventStore(data_dir) as store:
        enrol(store, "alice", "fleet-device-a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "deskcorder", "serve", "--data-dir", str(data_dir), "--port", "0", "--nats", dead_nats,
         "--retention-interval", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = _read_until(proc, re.compile(r"listening on (http://\S+)"), 30).group(1)
        remember_collector(url, data_dir)
        with httpx.Client(timeout=10) as client:
            health = client.get(f"{url}/v1/health")
            answer = post(client, url, body("batch-alice-1", "fleet-device-a", make_events("session-a", 0, 20)))
        assert health.status_code == 503
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        assert dead_nats not in answer.json()["error"]  # a 503 names no server address (logged instead)
    finally:
        _stop(proc)
    with EventStore(data_dir) as store:
        assert store.sessions() == []
        assert store.read_events(**READ).num_rows == 0
    assert not list(data_dir.glob("events/**/*.parquet"))


# -- the stream's replicas -------------------------------------------------------------------------

def stream_replicas(url: str, name: str) -> int:
    async def query() -> int:
        import nats

        nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
        try:
            return (await nc.jetstream().stream_info(name)).config.num_replicas
        finally:
            await nc.close()

    return asyncio.run(query())


def test_replicas_set_the_stream_a_collector_creates_and_an_existing_stream_keeps_its_own_with_a_warning(
        tmp_path: Path, nats_url: str, stream: str, pg_url: str) -> None:
    # The test server is a single NATS node, which takes only 1 replica: a 3-replica stream (what
    # production runs on a 3-node cluster) cannot be created here, only asked for and refused.
    data_dir = tmp_path / "data"
    with EventStore(data_dir, database_url=pg_url) as store:
        enrol(store, "alice", "fleet-device-a")
    proc, url = start_fleet_collector(data_dir, nats_url, stream, "--database-url", pg_url, "--replicas", "1")
    writer = None
    try:
        assert stream_replicas(nats_url, stream) == 1
        writer = Writer(data_dir, pg_url, nats_url, stream, "--replicas", "3")  # starts, and says what it found
        warning = next((line for line in writer.lines if "replica" in line), "")
        assert "has 1 replica(s), not the 3 asked for" in warning and "keeping it" in warning, writer.lines
        assert stream_replicas(nats_url, stream) == 1
        with httpx.Client(timeout=10) as client:
            assert post(client, url, body("batch-replicas-1", "fleet-device-a",
                                          make_events("session-r", 0, 20))).status_code == 200
        with EventStore(data_dir, database_url=pg_url) as store:
            deadline = time.monotonic() + 20
            while not store.sessions() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert [s.n_events for s in store.sessions()] == [20]
    finally:
        _stop(proc)
        if writer is not None:
            writer.stop()

    fresh = f"{stream}_NEW"
    try:
        refused = subprocess.run(
            [sys.executable, "-m", "deskcorder", "writer", "--nats", nats_url, "--data-dir", str(data_dir),
             "--database-url", pg_url, "--stream", fresh, "--replicas", "3", "--log-level", "warning"],
            capture_output=True, text=True, timeout=60)
    finally:
        asyncio.run(_delete_stream(nats_url, fresh))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "with 3 replica(s)" in refused.stderr and "takes only --replicas 1" in refused.stderr, refused.stderr


# -- what travels on the stream ----------------------------------------------------------------------

def stream_messages(url: str, name: str) -> list[tuple[str, bytes]]:
    """(Content-Type header, data) of every message in the stream, oldest first."""
    async def query() -> list[tuple[str, bytes]]:
        import nats

        nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
        try:
            js = nc.jetstream()
            state = (await js.stream_info(name)).state
            out = []
            for seq in range(state.first_seq, state.last_seq + 1):
                msg = await js.get_msg(name, seq)
                out.append(((msg.headers or {}).get("Content-Type", ""), msg.data))
            return out
        finally:
            await nc.close()

    return asyncio.run(query())


def publish_raw(url: str, name: str, device_id: str, payload: bytes, content_type: str) -> None:
    """Publish to the stream directly, as something other than a collector could."""
    async def send() -> None:
        import nats

        nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
        try:
            await nc.jetstream().publish(f"{name}.{device_id}", payload, stream=name,
                                         headers={"Content-Type": content_type})
        finally:
            await nc.close()

    asyncio.run(send())


def test_the_collector_publishes_checked_batches_as_arrow_compressed_when_big_and_the_writer_stores_them(
        tmp_path: Path, nats_url: str, stream: str, pg_url: str) -> None:
    import pyarrow as pa

    from deskcorder.wire import ARROW_STREAM, decode_checked

    data_dir = tmp_path / "data"
    with EventStore(data_dir, database_url=pg_url) as store:
        enrol(store, "alice", "fleet-device-a")
    proc, url = start_fleet_collector(data_dir, nats_url, stream, "--database-url", pg_url)
    writer = None
    small, big = make_events("session-a", 0, 50), make_events("session-a", 50, 12_000)
    try:
        with httpx.Client(timeout=30) as client:
            for batch_id, events in (("batch-small-1", small), ("batch-big-01", big)):
                payload = body(batch_id, "fleet-device-a", events)
                answer = post(client, url, payload)
                assert answer.status_code == 200 and answer.json()["stored"] == len(events), answer.text
        # The big one's plain Arrow form (~1.2 MB) is over NATS' 1 MiB max_payload; its body (~630 kB) is not.
        assert len(payload) < 1024 * 1024 - 1024
        messages = stream_messages(nats_url, stream)
        assert [media for media, _ in messages] == [ARROW_STREAM, ARROW_STREAM]
        assert [decode_checked(data).batch_id for _, data in messages] == ["batch-small-1", "batch-big-01"]
        readable = [pa.ipc.open_stream(data).read_all() for _, data in messages]  # plain Arrow, any reader
        assert [t.num_rows for t in readable] == [50, 12_000]
        assert len(messages[1][1]) < len(payload)  # compressed: smaller than the MessagePack body

        # A message in the body's own encoding (an older collector's, during an upgrade) is stored too.
        publish_raw(nats_url, stream, "fleet-device-a",
                    body("batch-older-1", "fleet-device-a", make_events("session-a", 12_050, 30)), MSGPACK)
        writer = Writer(data_dir, pg_url, nats_url, stream)
        deadline = time.monotonic() + 30
        while stream_state(nats_url, stream)["messages"] and time.monotonic() < deadline:
            time.sleep(0.2)
        with EventStore(data_dir, database_url=pg_url) as store:
            assert store.read_events(**READ)["seq"].to_pylist() == list(range(12_080))
    finally:
        _stop(proc)
        if writer is not None:
            assert "3 batches (12080 events) stored" in writer.stop()


def test_a_writer_checks_every_value_of_an_arrow_message_again_and_refuses_a_bad_one(
        tmp_path: Path, nats_url: str, stream: str, pg_url: str) -> None:
    import pyarrow as pa

    from deskcorder.wire import ARROW_STREAM, Batch, decode_batch, encode_checked

    data_dir = tmp_path / "data"
    with EventStore(data_dir, database_url=pg_url) as store:
        enrol(store, "alice", "fleet-device-a")
    good = decode_batch(body("batch-forged-1", "fleet-device-a", make_events("session-f", 0, 10)), MSGPACK)
    # Not from a collector: a title far over the 1,024-character limit, on an otherwise valid batch.
    titles = pa.array(["x" * 5000] + [None] * 9, pa.string())
    forged = good.events.set_column(good.events.schema.get_field_index("window_title"), "window_title", titles)
    writer = Writer(data_dir, pg_url, nats_url, stream)  # creates the stream
    try:
        publish_raw(nats_url, stream, "fleet-device-a",
                    encode_checked(Batch(good.batch_id, good.device_id, forged, good.content_hash)), ARROW_STREAM)
        deadline = time.monotonic() + 20
        while stream_state(nats_url, stream)["messages"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stream_state(nats_url, stream)["messages"] == 0  # terminated, not retried forever
    finally:
        closing = writer.stop()
    assert "1 refused" in closing, closing
    assert any("window_title" in line and "longer than 1024" in line for line in writer.lines), writer.lines
    with EventStore(data_dir, database_url=pg_url) as store:
        assert store.sessions() == []


def test_decode_checked_reads_back_what_encode_checked_wrote_and_refuses_anything_else() -> None:
    from deskcorder.wire import InvalidBatch, UnreadableBatch, decode_batch, decode_checked, encode_checked

    batch = decode_batch(body("batch-roundtrip", "fleet-device-a", make_events("session-x", 0, 100)), MSGPACK)
    for compress in (False, True):
        back = decode_checked(encode_checked(batch, compress=compress))
        assert (back.batch_id, back.device_id, back.content_hash) == (batch.batch_id, batch.device_id,
                                                                     batch.content_hash)
        assert back.events.equals(batch.events) and back.events.schema.metadata is None
    encoded = encode_checked(batch)
    for junk in (b"", b"not arrow", encoded[: len(encoded) // 2]):
        with pytest.raises(UnreadableBatch):
            decode_checked(junk)
    renamed = dataclasses.replace(batch, batch_id="no")
    with pytest.raises(InvalidBatch) as refused:
        decode_checked(encode_checked(renamed))
    assert refused.value.field == "batch_id"
    with pytest.raises(InvalidBatch) as refused:
        decode_checked(encode_checked(dataclasses.replace(batch, content_hash="abc")))
    assert refused.value.field == "content_hash"
    with pytest.raises(InvalidBatch) as refused:
        decode_checked(encode_checked(dataclasses.replace(batch, events=batch.events.drop_columns(["reason"]))))
    assert refused.value.field == "events"


def test_gap_events_travel_through_the_fleet_and_the_writer_counts_them_for_the_device_once(
        tmp_path: Path, nats_url: str, stream: str, pg_url: str) -> None:
    data_dir = tmp_path / "data"
    with EventStore(data_dir, database_url=pg_url) as store:
        enrol(store, "gina", "fleet-device-g")

    def with_gap(start: int, reason: str, lost: int) -> list[Event]:
        t = (start + 10) * 5_000_000
        gap = Event("session-g", start + 10, t, MIDNIGHT + t, EventKind.GAP, reason=reason, lost=lost)
        return make_events("session-g", start, 10) + [gap] + make_events("session-g", start + 11, 9)

    proc, url = start_fleet_collector(data_dir, nats_url, stream, "--database-url", pg_url)
    writer = None
    try:
        with httpx.Client(timeout=10) as client:
            first = body("batch-gap-0001", "fleet-device-g", with_gap(0, "queue_full", 37))
            assert post(client, url, first).status_code == 200
            assert post(client, url, first).json()["duplicate"]  # a retry: counted once
            assert post(client, url, body("batch-gap-0002", "fleet-device-g",
                                          with_gap(20, "callback_error", 2))).status_code == 200
            # An agent from before gap events sends no `lost` column at all: still accepted.
            older = {k: v for k, v in events_to_columns(make_events("session-g", 40, 5)).items() if k != "lost"}
            assert post(client, url, encode_batch("batch-gap-0003", "fleet-device-g", older)).status_code == 200
            bad = post(client, url, body("batch-gap-0004", "fleet-device-g", with_gap(45, "solar_flare", 1)))
            assert bad.status_code == 422 and (bad.json()["field"], bad.json()["row"]) == ("events.reason", 10)
        writer = Writer(data_dir, pg_url, nats_url, stream)
        deadline = time.monotonic() + 20
        while stream_state(nats_url, stream)["messages"] and time.monotonic() < deadline:
            time.sleep(0.2)
        with EventStore(data_dir, database_url=pg_url) as store:
            (device,) = store.devices()
            events = store.read_events(**READ)
        assert device.lost == {"queue_full": 37, "spool_unavailable": 0, "callback_error": 2}
        assert events["seq"].to_pylist() == list(range(45))
        assert [(e["seq"], e["reason"], e["lost"]) for e in events.to_pylist() if e["kind"] == "gap"] == [
            (10, "queue_full", 37), (30, "callback_error", 2)]
    finally:
        _stop(proc)
        if writer is not None:
            writer.stop()
