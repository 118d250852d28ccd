"""kill -9 of the collector mid-stream loses no acknowledged batch and stores none twice.

A client thread posts batches back to back; the server process is SIGKILLed
at an arbitrary moment (twice, so two crashes land in different phases of a
write), restarted on the same data dir, and the client re-posts everything
that was not acknowledged plus every batch that was. Afterwards the store,
reopened from disk, must hold each batch exactly once.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import msgpack

from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.store import EventStore

from .helpers import READ, _stop, auth_headers, enrol_in, next_utc_midnight_ns, spawn_collector

SESSION = "sess-crash"
EVENTS_PER_BATCH = 400
T0 = next_utc_midnight_ns()  # after the consent the test gives
NO_RATE_LIMIT = ("--device-rate", "0")  # one device posts back to back here, far above an agent's rate


def batch_body(index: int) -> bytes:
    start = index * EVENTS_PER_BATCH  # one session, seq contiguous across batches, as the agent sends it
    events = [Event(SESSION, seq, seq * 1000, T0 + seq * 1000, EventKind.MOVE, x=seq % 1000, y=seq % 700)
              for seq in range(start, start + EVENTS_PER_BATCH)]
    return msgpack.packb({"v": 1, "batch_id": f"batch-crash-{index:05d}", "device_id": "device-crash",
                          "events": events_to_columns(events)}, use_bin_type=True)


def post(client: httpx.Client, url: str, index: int) -> httpx.Response:
    return client.post(f"{url}/v1/batches", content=batch_body(index),
                       headers={"Content-Type": "application/msgpack", **auth_headers(url, "device-crash")})


def stream_until_killed(url: str, first: int, acked: dict[int, int], attempted: set[int],
                        result: list[int]) -> None:
    """Post batches first, first+1, ... until the server dies; puts the index in flight then in result."""
    index = first
    with httpx.Client(timeout=10) as client:
        while True:
            attempted.add(index)
            try:
                response = post(client, url, index)
            except httpx.TransportError:
                result.append(index)  # the server died with this batch in flight: no ack
                return
            assert response.status_code == 200, response.text
            acked[index] = response.json()["stored"]
            index += 1


def test_every_acked_batch_is_stored_exactly_once_after_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    enrol_in(data_dir, "alice", "device-crash")
    acked: dict[int, int] = {}
    attempted: set[int] = set()
    next_index = 0
    for kill_after in (0.5, 0.9):
        proc, url = spawn_collector(data_dir, 0, *NO_RATE_LIMIT)
        result: list[int] = []
        client = threading.Thread(target=stream_until_killed, args=(url, next_index, acked, attempted, result))
        client.start()
        time.sleep(kill_after)
        proc.kill()  # SIGKILL: no shutdown handler runs
        proc.wait()
        client.join(timeout=30)
        assert result, "the client thread did not notice the server died"
        next_index = result[0] + 1
    assert len(acked) >= 10, f"only {len(acked)} batches were acknowledged before the kills; the test proves little"

    proc, url = spawn_collector(data_dir, 0, *NO_RATE_LIMIT)
    try:
        with httpx.Client(timeout=30) as client:
            for index in sorted(attempted):
                response = post(client, url, index)
                assert response.status_code == 200, response.text
                if index in acked:  # acknowledged once, so a repeat must store nothing
                    assert response.json() == {"batch_id": f"batch-crash-{index:05d}", "stored": 0,
                                               "duplicate": True}
    finally:
        _stop(proc)

    with EventStore(data_dir) as store:
        events = store.read_events(**READ, session_id=SESSION)
        assert events["seq"].to_pylist() == list(range((max(attempted) + 1) * EVENTS_PER_BATCH))
        [device] = store.devices()
        assert (device.n_batches, device.n_events) == (len(attempted), len(attempted) * EVENTS_PER_BATCH)
        [session] = store.sessions()
        assert session.n_events == len(attempted) * EVENTS_PER_BATCH
