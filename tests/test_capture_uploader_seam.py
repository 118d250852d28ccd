"""The uploader's status table, row by row, through its handler-function seam.

A real spool on disk, the real wire decoder reading every body the uploader
sends, and a plain function in place of the collector (``HandlerTransport``).
The uploader's clock is injected, so a ten-minute Retry-After is tested by
moving a number, not by sleeping.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import random
import sqlite3
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from deskcorder.capture import HandlerTransport, Response, Spool, TransportError
from deskcorder.capture._uploader import Uploader
from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.wire import decode_batch

DEVICE = "seam-device-1"
SESSION = "0123456789abcdef0123456789abcdef"
EVENTS_PER_CHUNK = 4


class Clock:
    """The uploader's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Collector:
    """Answers each request with the next scripted answer; remembers the batches it was sent."""

    def __init__(self, *answers: Response | Callable[[], Response]):
        self.answers = list(answers)
        self.batch_ids: list[str] = []
        self.batch_sizes: list[int] = []

    def __call__(self, body: bytes, content_type: str) -> Response:
        batch = decode_batch(body, content_type)  # every body the uploader sends is a valid batch
        self.batch_ids.append(batch.batch_id)
        self.batch_sizes.append(batch.events.num_rows)
        answer = self.answers.pop(0) if self.answers else OK
        return answer() if callable(answer) else answer


OK = Response(200, {}, b'{"stored": true}')


def answer(status: int, body: dict | None = None, **headers: str) -> Response:
    return Response(status, {k.replace("_", "-"): v for k, v in headers.items()},
                    json.dumps(body or {"error": f"status {status}"}).encode())


def no_reply() -> Response:
    raise TransportError("ConnectError: [Errno 111] Connection refused")


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    spool = Spool(tmp_path / "spool.db")
    yield spool
    spool.close()


def spool_chunks(spool: Spool, n_chunks: int) -> None:
    now = time.time_ns()
    for c in range(n_chunks):
        first = c * EVENTS_PER_CHUNK
        events = [Event(session_id=SESSION, seq=first + i, t_mono_ns=10**9 + first + i, t_wall_ns=now + first + i,
                        kind=EventKind.KEY_DOWN, key="a", char="a") for i in range(EVENTS_PER_CHUNK)]
        spool.append(SESSION, first, events_to_columns(events))


def uploader_for(spool: Spool, collector: Collector, clock: Clock, max_events: int = 20_000) -> Uploader:
    return Uploader(spool, HandlerTransport(collector), DEVICE, max_events=max_events, rng=random.Random(7),
                    clock=clock)


def dead_letter_bodies(spool: Spool) -> list[bytes]:
    with contextlib.closing(sqlite3.connect(spool.path)) as db:
        return [body for (body,) in db.execute("SELECT columns FROM dead_letter ORDER BY dead_at_ns")]


# -- 200 -----------------------------------------------------------------------------------

def test_a_stored_batch_leaves_the_spool_and_is_counted(spool: Spool) -> None:
    spool_chunks(spool, 2)
    collector, clock = Collector(OK), Clock()
    uploader = uploader_for(spool, collector, clock)
    assert uploader.upload_once() is True
    assert (uploader.uploaded, uploader.batches, spool.backlog()) == (8, 1, 0)
    assert spool.pending_batch_id() is None and uploader.upload_once() is False  # nothing left to send


# -- 429 / 503 with Retry-After, and its cap -------------------------------------------------

@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_silences_the_agent_exactly_that_long_then_the_same_batch_goes_again(spool: Spool,
                                                                                          status: int) -> None:
    spool_chunks(spool, 1)
    collector, clock = Collector(answer(status, retry_after="7")), Clock()
    uploader = uploader_for(spool, collector, clock)
    assert uploader.upload_once() is False
    assert uploader.disabled_until == clock.now + 7 and not uploader.is_healthy()
    clock.now += 6.9
    assert not uploader.is_healthy()
    clock.now += 0.1
    assert uploader.is_healthy()
    assert uploader.upload_once() is True
    first, again = collector.batch_ids
    assert again == first  # the collector de-duplicates by batch id: a retry is the identical batch
    assert spool.backlog() == 0 and spool.dead_letter_events() == 0


def test_a_retry_after_given_as_an_http_date_waits_until_that_date(spool: Spool) -> None:
    spool_chunks(spool, 1)
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    clock = Clock()
    uploader = uploader_for(spool, Collector(answer(429, retry_after=when)), clock)
    uploader.upload_once()
    assert 118 <= uploader.disabled_until - clock.now <= 120


def test_a_retry_after_of_a_day_is_capped_at_ten_minutes(spool: Spool) -> None:
    spool_chunks(spool, 1)
    clock = Clock()
    uploader = uploader_for(spool, Collector(answer(429, retry_after="86400")), clock)
    uploader.upload_once()
    assert uploader.disabled_until - clock.now == Uploader.RETRY_AFTER_MAX_S == 600
    clock.now += 600
    assert uploader.is_healthy()


def test_a_429_without_retry_after_backs_off_as_any_failure_does(spool: Spool) -> None:
    spool_chunks(spool, 1)
    clock = Clock()
    uploader = uploader_for(spool, Collector(answer(429)), clock)
    uploader.upload_once()
    assert Uploader.BACKOFF_BASE_S / 2 <= uploader.disabled_until - clock.now <= Uploader.BACKOFF_BASE_S


# -- 413: regroup, a single chunk is dead-lettered -------------------------------------------

def test_a_413_regroups_the_chunks_into_smaller_batches_under_new_ids_and_loses_nothing(spool: Spool) -> None:
    spool_chunks(spool, 4)  # 16 events in 4 chunks, one batch
    collector, clock = Collector(answer(413)), Clock()
    uploader = uploader_for(spool, collector, clock)
    assert uploader.upload_once() is True  # left the queue: given back to be sent smaller, no backoff
    assert uploader.is_healthy() and spool.pending_batch_id() is None and spool.backlog() == 16
    while uploader.upload_once():
        pass
    # Half the refused size from now on (8 events = two chunks); the refused body was never read,
    # so the events go out again under fresh batch ids.
    assert collector.batch_sizes == [16, 8, 8]
    assert len(set(collector.batch_ids)) == 3
    assert (uploader.uploaded, spool.backlog(), spool.dead_letter_events()) == (16, 0, 0)


def test_a_413_for_a_single_chunk_dead_letters_it_keeping_its_events(spool: Spool) -> None:
    spool_chunks(spool, 2)
    collector, clock = Collector(answer(413)), Clock()
    uploader = uploader_for(spool, collector, clock, max_events=EVENTS_PER_CHUNK)  # one chunk per batch
    assert uploader.upload_once() is True and uploader.upload_once() is True
    (refused,) = spool.dead_letters()
    assert refused["status"] == 413 and refused["n_events"] == EVENTS_PER_CHUNK
    assert dead_letter_bodies(spool) != [b""]  # kept for inspection
    assert (uploader.uploaded, uploader.dead_lettered, spool.backlog()) == (4, 4, 0)


# -- 401, 403, 404, 405: the server refuses every batch -> back off, keep the backlog ------------

@pytest.mark.parametrize("status", [401, 403, 404, 405])
def test_a_server_refusing_every_batch_is_retried_with_backoff_not_dead_lettered(spool: Spool, status: int) -> None:
    spool_chunks(spool, 3)
    collector = Collector(answer(status), answer(status), answer(status))
    clock = Clock()
    uploader = uploader_for(spool, collector, clock)
    delays = []
    for _ in range(3):
        assert uploader.upload_once() is False
        delays.append(uploader.disabled_until - clock.now)
        clock.now = uploader.disabled_until
    assert f"collector answered {status}" in (uploader.last_error or "")
    # Exponential (0.5, 1, 2 s ceilings) with jitter: each wait in [ceiling / 2, ceiling].
    for n, delay in enumerate(delays):
        ceiling = Uploader.BACKOFF_BASE_S * 2 ** n
        assert ceiling / 2 <= delay <= ceiling
    assert spool.dead_letters() == [] and spool.backlog() == 12
    assert uploader.upload_once() is True  # the configuration fixed: the same batch, nothing lost
    assert len(set(collector.batch_ids)) == 1 and spool.backlog() == 0 and uploader.last_error is None


# -- 403 naming a row: events outside consent -> deleted, only counted -----------------------

def test_a_403_naming_a_row_deletes_that_batchs_events_and_keeps_only_their_count(spool: Spool) -> None:
    spool_chunks(spool, 2)
    refusal = answer(403, {"error": "events.t_wall_ns row 0 is outside the consent of this device's person",
                           "field": "events.t_wall_ns", "row": 0})
    collector, clock = Collector(refusal, OK), Clock()
    uploader = uploader_for(spool, collector, clock, max_events=EVENTS_PER_CHUNK)
    assert uploader.upload_once() is True and uploader.is_healthy()  # no backoff: the backlog goes on
    (refused,) = spool.dead_letters()
    assert refused["status"] == 403 and "consent" in refused["error"] and refused["n_events"] == 4
    assert dead_letter_bodies(spool) == [b""]  # what was not consented to is not kept
    assert uploader.upload_once() is True
    assert (uploader.uploaded, uploader.dead_lettered, spool.backlog()) == (4, 4, 0)


# -- other 4xx: a poisoned batch -> dead letter with its events, go on ------------------------

@pytest.mark.parametrize("status", [400, 409, 415, 422])
def test_a_poisoned_batch_is_dead_lettered_with_its_events_and_the_next_one_goes(spool: Spool, status: int) -> None:
    spool_chunks(spool, 2)
    collector = Collector(answer(status, {"error": "events.seq row 2: not an integer", "field": "events.seq",
                                          "row": 2}), OK)
    clock = Clock()
    uploader = uploader_for(spool, collector, clock, max_events=EVENTS_PER_CHUNK)
    assert uploader.upload_once() is True and uploader.is_healthy()
    (refused,) = spool.dead_letters()
    assert refused["status"] == status and "events.seq row 2" in refused["error"]
    (body,) = dead_letter_bodies(spool)
    assert body != b""  # kept for inspection, unlike events refused for consent
    assert uploader.upload_once() is True
    assert (uploader.uploaded, uploader.dead_lettered, spool.backlog()) == (4, 4, 0)
    assert len(set(collector.batch_ids)) == 2


# -- 408, 5xx, no reply: retry the same batch with exponential backoff and jitter ----------------

@pytest.mark.parametrize("failure", [answer(408), answer(500), answer(502), answer(503), no_reply],
                         ids=["408", "500", "502", "503-no-retry-after", "no-reply"])
def test_a_failed_attempt_retries_the_identical_batch_after_a_growing_jittered_wait(
        spool: Spool, failure: Response | Callable[[], Response]) -> None:
    spool_chunks(spool, 2)
    failures = 12
    collector, clock = Collector(*[failure] * failures), Clock()
    uploader = uploader_for(spool, collector, clock)
    delays = []
    for _ in range(failures):
        assert uploader.upload_once() is False and not uploader.is_healthy()
        delays.append(uploader.disabled_until - clock.now)
        clock.now = uploader.disabled_until
    for n, delay in enumerate(delays):
        ceiling = min(Uploader.BACKOFF_MAX_S, Uploader.BACKOFF_BASE_S * 2 ** n)
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= Uploader.BACKOFF_MAX_S and delays[-1] >= Uploader.BACKOFF_MAX_S / 2  # capped at a minute
    assert uploader.upload_once() is True
    assert len(set(collector.batch_ids)) == 1 and len(collector.batch_ids) == failures + 1
    assert (uploader.uploaded, spool.backlog(), spool.dead_letters()) == (8, 0, [])


def test_after_a_success_the_backoff_starts_again_from_its_base(spool: Spool) -> None:
    spool_chunks(spool, 2)
    collector = Collector(answer(500), answer(500), answer(500), OK, answer(500))
    clock = Clock()
    uploader = uploader_for(spool, collector, clock, max_events=EVENTS_PER_CHUNK)
    for _ in range(3):
        uploader.upload_once()
        clock.now = uploader.disabled_until
    assert uploader.upload_once() is True
    assert uploader.upload_once() is False
    assert uploader.disabled_until - clock.now <= Uploader.BACKOFF_BASE_S


def test_agents_failing_together_retry_apart(tmp_path: Path) -> None:
    waits = []
    for seed in range(8):
        spool = Spool(tmp_path / f"spool-{seed}.db")
        spool_chunks(spool, 1)
        clock = Clock()
        uploader = Uploader(spool, HandlerTransport(Collector(answer(503))), DEVICE, rng=random.Random(seed),
                            clock=clock)
        uploader.upload_once()
        waits.append(round(uploader.disabled_until - clock.now, 6))
        spool.close()
    assert len(set(waits)) == len(waits)
