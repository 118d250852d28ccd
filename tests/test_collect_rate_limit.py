"""Fleet collectors share each device's rate limit through the control database; the embedded one keeps it in memory.

The bucket statement (``EventStore.take_rate_token``) runs on SQLite and
PostgreSQL, raced by threads; the fleet tests run two real `deskcorder serve
--nats` processes on one fresh PostgreSQL database and real HTTP (fixtures and
helpers of ``test_fleet_jetstream.py``: without NATS or PostgreSQL they skip,
except on CI, where they fail).
"""

from __future__ import annotations

import concurrent.futures
import math
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from sqlalchemy import text

from deskcorder.collect._device_auth import SharedRateLimiter
from deskcorder.collect._problems import Problem
from deskcorder.store import EventStore, StoreError, TokenDecision

from .helpers import _stop, enrol
from .test_fleet_jetstream import body, make_events, post, start_fleet_collector, stream_state
from .test_fleet_jetstream import nats_url, pg_url, stream  # noqa: F401  (fixtures: the real servers)
from .test_store_event_store import database_url  # noqa: F401  (a fixture: SQLite, and PostgreSQL)

DEVICE = "device-rate-0001"
T = 1_900_000_000.0  # a fixed "now" for the statement tests: refill happens only when they move it


@pytest.fixture
def store(tmp_path: Path, database_url: str | None) -> Iterator[EventStore]:  # noqa: F811
    with EventStore(tmp_path / "data", database_url=database_url) as opened:
        enrol(opened, "alice", DEVICE, "device-rate-0002")
        yield opened


def take(store: EventStore, now: float, device_id: str = DEVICE, rate: float = 2.0, burst: int = 4
         ) -> TokenDecision:
    return store.take_rate_token(device_id, rate_per_s=rate, burst=burst, now=now)


# -- the statement -------------------------------------------------------------------------------------

def test_a_bucket_starts_full_refills_at_the_rate_up_to_the_burst_and_a_refusal_costs_nothing(
        store: EventStore) -> None:
    assert [take(store, T).allowed for _ in range(6)] == [True] * 4 + [False] * 2
    assert take(store, T).tokens == 0.0  # refusals did not push the bucket below empty
    assert take(store, T, "device-rate-0002").tokens == 3.0  # another device has its own bucket
    half = take(store, T + 0.25)  # 2/s: half a token after 0.25 s, not enough
    assert not half.allowed and half.tokens == pytest.approx(0.5)
    assert [take(store, T + 1.0).allowed for _ in range(3)] == [True, True, False]  # 1 s at 2/s: 2 tokens
    full = take(store, T + 3600)
    assert full.allowed and full.tokens == 3.0  # an hour's refill stops at the burst
    # A collector whose clock is behind gets no tokens for negative time and leaves the stamp alone.
    assert [take(store, T + 3590).allowed for _ in range(4)] == [True, True, True, False]
    later = take(store, T + 3600.5)
    assert later.allowed and later.tokens == pytest.approx(0.0)


def test_threads_racing_on_one_device_never_get_more_than_the_burst(store: EventStore) -> None:
    burst, threads, each = 25, 8, 10
    start = threading.Barrier(threads)

    def hammer() -> list[bool]:
        start.wait()
        # Almost no refill (1 token per 10^6 s), so exactly the burst may pass however they interleave.
        return [store.take_rate_token(DEVICE, rate_per_s=1e-6, burst=burst, now=time.time()).allowed
                for _ in range(each)]

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        answers = [a for f in [pool.submit(hammer) for _ in range(threads)] for a in f.result()]
    assert answers.count(True) == burst and len(answers) == threads * each
    with store._engine.connect() as conn:
        assert 0.0 <= conn.execute(text("select tokens from device_rate_limits")).scalar_one() < 1.0


def test_a_device_missing_from_devices_or_a_failing_database_is_a_store_error(store: EventStore) -> None:
    with pytest.raises(StoreError, match="rate limit of device 'device-never-enrolled'.*retry"):
        take(store, T, "device-never-enrolled")
    with store._engine.begin() as conn:
        conn.execute(text("drop table device_rate_limits"))
    with pytest.raises(StoreError, match="rate limit of device"):
        take(store, T)


def test_the_shared_limiter_answers_429_with_retry_after_and_503_when_the_database_fails(
        tmp_path: Path) -> None:
    with EventStore(tmp_path / "data") as store:
        enrol(store, "alice", DEVICE)
        limiter = SharedRateLimiter(store, 0.5, 2, clock=lambda: T)
        limiter.check(DEVICE)
        limiter.check(DEVICE)
        with pytest.raises(Problem) as refused:
            limiter.check(DEVICE)
        assert refused.value.status == 429 and refused.value.headers == {"Retry-After": "2"}  # 1 token at 0.5/s
        assert "more than 0.5 batches per second (burst 2)" in refused.value.error
        SharedRateLimiter(store, 0, 2).check("device-never-enrolled")  # 0: no limit, not even a query
        with store._engine.begin() as conn:
            conn.execute(text("drop table device_rate_limits"))
        with pytest.raises(Problem) as failed:
            limiter.check(DEVICE)
        assert failed.value.status == 503 and failed.value.headers == {"Retry-After": "1"}
        assert "checking the device's rate limit failed" in failed.value.error
        assert "device_rate_limits" not in failed.value.error  # the SQL stays in the log


# -- two real fleet collectors ---------------------------------------------------------------------

RATE, BURST = 0.5, 8  # one token every 2 s: a burst of posts takes far less


def test_two_fleet_collectors_give_a_device_its_burst_once_and_tokens_back_at_the_rate(  # noqa: F811
        tmp_path: Path, nats_url: str, stream: str, pg_url: str) -> None:
    data_dir = tmp_path / "data"
    with EventStore(data_dir, database_url=pg_url) as store:
        enrol(store, "alice", DEVICE)
    limits = ("--database-url", pg_url, "--device-rate", str(RATE), "--device-burst", str(BURST))
    collectors = [start_fleet_collector(data_dir, nats_url, stream, *limits) for _ in range(2)]
    urls = [url for _, url in collectors]
    try:
        payloads = [body(f"batch-rate-{i:03d}", DEVICE, make_events("session-rate", i * 5, 5))
                    for i in range(3 * BURST + 2)]
        with httpx.Client(timeout=10) as client:
            started = time.monotonic()
            answers = [(urls[i % 2], post(client, urls[i % 2], p)) for i, p in enumerate(payloads[:3 * BURST])]
            elapsed = time.monotonic() - started
            ok = [url for url, r in answers if r.status_code == 200]
            # The bucket refills during the burst too; on any sane machine that is less than a token.
            assert BURST <= len(ok) <= BURST + math.floor(elapsed * RATE), (len(ok), elapsed)
            assert set(ok) == set(urls)  # both collectors took from the same bucket...
            limited = [(url, r) for url, r in answers if r.status_code != 200]
            assert {url for url, _ in limited} == set(urls)  # ...and both refused once it was empty
            for _, r in limited:
                assert r.status_code == 429 and "batches per second" in r.json()["error"], r.text
                assert 1 <= int(r.headers["Retry-After"]) <= math.ceil(1 / RATE)
            assert stream_state(nats_url, stream)["messages"] == len(ok)  # refused batches were not published

            # Retry-After is when the next token is there: one, for whichever collector asks first.
            time.sleep(int(limited[-1][1].headers["Retry-After"]))
            assert post(client, urls[1], payloads[-2]).status_code == 200
            assert post(client, urls[0], payloads[-1]).status_code == 429
    finally:
        for proc, _ in collectors:
            _stop(proc)


def test_a_fleet_collector_answers_503_with_retry_after_when_the_shared_bucket_cannot_be_read(  # noqa: F811
        tmp_path: Path, nats_url: str, stream: str, pg_url: str) -> None:
    data_dir = tmp_path / "data"
    with EventStore(data_dir, database_url=pg_url) as store:
        enrol(store, "alice", DEVICE)
        proc, url = start_fleet_collector(data_dir, nats_url, stream, "--database-url", pg_url)
        try:
            with store._engine.begin() as conn:  # authentication still works, the rate limit cannot
                conn.execute(text("drop table device_rate_limits"))
            with httpx.Client(timeout=10) as client:
                answers = [post(client, url, body(f"batch-down-{i}", DEVICE, make_events("session-down", i, 1)))
                           for i in range(3)]
                assert client.get(f"{url}/v1/health").status_code == 200  # the collector lives on
        finally:
            _stop(proc)
    for r in answers:
        assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text
        assert "rate limit" in r.json()["error"] and "device_rate_limits" not in r.json()["error"]  # SQL: log only
    assert stream_state(nats_url, stream)["messages"] == 0  # nothing got through unchecked
