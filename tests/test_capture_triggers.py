"""The agent's writer and uploader act when there is something to do, not on a timer.

The writer writes a chunk when the oldest event in memory is ``flush_interval_s``
old (the kill -9 bound: see test_capture_durability.py for the real thing) or
when ``flush_max_events`` wait; with nothing in memory it writes nothing. The
uploader sends once ``UPLOAD_MIN_EVENTS`` are spooled or the oldest has waited
its latency bound, and a backlog an earlier agent left at once; with nothing
spooled it sends nothing. Real threads, a real spool, the collector a function.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from deskcorder.capture import FixedStatus, HandlerTransport, RawEvent, RecordingStatus, Response, Spool
from deskcorder.capture._gate import Gate
from deskcorder.capture._queue import EventQueue
from deskcorder.capture._status import StatusPoller
from deskcorder.capture._uploader import Uploader
from deskcorder.capture._writer import Writer
from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.policy import parse_policy
from deskcorder.wire import decode_batch

from .helpers import ALLOW_ALL_POLICY

SESSION = "0123456789abcdef0123456789abcdef"
KEY = RawEvent(EventKind.KEY_DOWN, key="a", char="a")
FOCUS = RawEvent(EventKind.FOCUS, app_class="XTerm", app_process="xterm", window_title="notes")


class Collector:
    """Stores every batch: when it came and how many events it held."""

    def __init__(self) -> None:
        self.batches: list[tuple[float, int]] = []
        self.lock = threading.Lock()

    def __call__(self, body: bytes, content_type: str) -> Response:
        with self.lock:
            self.batches.append((time.monotonic(), decode_batch(body, content_type).events.num_rows))
        return Response(200, {}, b'{"stored": true}')


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    spool = Spool(tmp_path / "spool.db")
    yield spool
    spool.close()


def spool_events(spool: Spool, n: int, first: int = 0) -> None:
    now = time.time_ns()
    events = [Event(session_id=SESSION, seq=first + i, t_mono_ns=10**9 + first + i, t_wall_ns=now + i,
                    kind=EventKind.KEY_DOWN, key="a", char="a") for i in range(n)]
    spool.append(SESSION, first, events_to_columns(events))


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_an_idle_uploader_sends_nothing_and_a_spooled_chunk_goes_once_it_has_waited_the_bound(spool: Spool) -> None:
    collector = Collector()
    uploader = Uploader(spool, HandlerTransport(collector), "trigger-device", interval_s=0.4)
    uploader.start()
    try:
        time.sleep(0.6)
        assert collector.batches == []  # an empty spool: no request at all
        spool_events(spool, 4)
        spooled_at = time.monotonic()
        uploader.spooled(4)
        time.sleep(0.2)
        assert collector.batches == [], "sent before the latency bound with far fewer than enough events"
        assert wait_until(lambda: collector.batches, 2.0), "not sent after the latency bound"
        [(sent_at, n)] = collector.batches
        assert n == 4 and 0.35 <= sent_at - spooled_at < 1.0
        time.sleep(0.6)
        assert len(collector.batches) == 1 and spool.backlog() == 0  # nothing more to send: nothing sent
    finally:
        uploader.stop()


def test_enough_spooled_events_go_without_waiting_for_the_bound(spool: Spool) -> None:
    collector = Collector()
    uploader = Uploader(spool, HandlerTransport(collector), "trigger-device", interval_s=60)
    uploader.start()
    try:
        assert wait_until(lambda: spool.backlog() == 0, 1.0)
        spool_events(spool, Uploader.UPLOAD_MIN_EVENTS - 1)
        uploader.spooled(Uploader.UPLOAD_MIN_EVENTS - 1)
        time.sleep(0.3)
        assert collector.batches == []
        spool_events(spool, 1, first=Uploader.UPLOAD_MIN_EVENTS - 1)
        uploader.spooled(1)
        assert wait_until(lambda: collector.batches, 2.0), "enough events waited, yet nothing was sent"
        assert [n for _, n in collector.batches] == [Uploader.UPLOAD_MIN_EVENTS]
    finally:
        uploader.stop(timeout=0.5)


def test_a_backlog_an_earlier_agent_left_goes_at_start_whatever_the_bound(spool: Spool) -> None:
    spool_events(spool, 7)
    collector = Collector()
    uploader = Uploader(spool, HandlerTransport(collector), "trigger-device", interval_s=60)
    uploader.start()
    try:
        assert wait_until(lambda: collector.batches, 2.0), "the backlog waited for the latency bound"
        assert [n for _, n in collector.batches] == [7] and spool.backlog() == 0
    finally:
        uploader.stop(timeout=0.5)


def recording_queue() -> EventQueue:
    queue = EventQueue(Gate())
    policy = parse_policy(ALLOW_ALL_POLICY)
    status = RecordingStatus(True, None, "allowed", policy, policy.version)
    queue.apply(lambda t_mono, t_wall, out: queue.gate.set_status(status, t_mono, t_wall, out))
    return queue


def test_the_writer_spools_an_event_once_it_is_flush_interval_old_and_is_quiet_otherwise(spool: Spool) -> None:
    queue = recording_queue()
    chunks: list[tuple[float, int]] = []
    writer = Writer(queue, spool, SESSION, flush_interval_s=0.3,
                    on_spooled=lambda n: chunks.append((time.monotonic(), n)))
    writer.start()
    try:
        time.sleep(0.4)
        assert chunks == []
        submitted_at = time.monotonic()
        queue.submit(FOCUS)
        queue.submit(KEY)
        assert wait_until(lambda: chunks, 2.0)
        [(spooled_at, n)] = chunks
        # The age trigger: not before the oldest event is flush_interval old, and not much after.
        assert n == 2 and 0.29 <= spooled_at - submitted_at < 0.6
        time.sleep(0.5)
        assert len(chunks) == 1  # nothing in memory: no more writes
    finally:
        writer.stop()


def test_the_writer_spools_at_once_when_flush_max_events_wait(spool: Spool) -> None:
    queue = recording_queue()
    chunks: list[int] = []
    writer = Writer(queue, spool, SESSION, flush_interval_s=60, flush_max_events=50, on_spooled=chunks.append)
    writer.start()
    try:
        queue.submit(FOCUS)
        for _ in range(49):
            queue.submit(KEY)
        assert wait_until(lambda: chunks, 2.0), "50 events waited, yet nothing was written"
        assert chunks[0] >= 50
    finally:
        writer.stop()


class CountingStatus(FixedStatus):
    def __init__(self) -> None:
        super().__init__(ALLOW_ALL_POLICY)
        self.asked: list[float] = []

    def status(self, device_id: str) -> RecordingStatus:
        self.asked.append(time.monotonic())
        return super().status(device_id)


def test_an_idle_desk_is_polled_less_and_less_often_and_at_once_again_at_the_next_input() -> None:
    class QuickToIdle(StatusPoller):
        IDLE_AFTER_S = 0.3
        IDLE_POLL_MAX_S = 5.0

    queue = recording_queue()
    source = CountingStatus()
    poller = QuickToIdle(source, "trigger-device", enrol_token=None, hostname="desk", interval_s=0.1,
                         on_status=lambda status: None, on_fatal=lambda error: None, on_tick=lambda: None,
                         watch_input=queue.on_next_input)
    poller.start()
    try:
        time.sleep(2.0)
        gaps = [b - a for a, b in zip(source.asked, source.asked[1:])]
        assert gaps[0] < 0.2 and gaps[-1] >= 0.7, gaps  # 0.1 s while "active", then doubling
        quiet_polls = len(source.asked)
        typed_at = time.monotonic()
        queue.submit(KEY)
        assert wait_until(lambda: len(source.asked) > quiet_polls, 1.0)
        assert source.asked[quiet_polls] - typed_at < 0.1, "the first input after an idle spell did not ask at once"
        time.sleep(0.35)
        assert len(source.asked) >= quiet_polls + 3  # and at the full cadence again
    finally:
        poller.stop()
