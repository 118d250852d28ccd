"""Hostile input gets a 4xx naming the field, keeps the connection open and stores nothing; decoding is bounded.

Regressions for issue 9: failure 1 (text that is not Unicode answered 500 and dropped the connection),
failure 3 (one 32 MiB body of empty arrays took a collector from 184 MB to 2.3 GB and stalled
``/v1/health`` for 14-55 s) and failure 6 (12.9 stored as 12, ``seq: 5.0`` and ``"v": true`` accepted, NUL
accepted in text). Every case runs against a real ``deskcorder serve`` process, in both encodings where
the encoding can carry the value.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import msgpack
import psutil
import pytest

from .helpers import _stop, auth_headers, enrol_in, enrolment_token, spawn_collector, start_collector
from .ingest_rig import (DEVICE, JSON, MSGPACK, NO_RATE_LIMIT, T0, batch, encode, exchange, good_columns,
                         stored)

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("hostile") / "data"
    enrol_in(data_dir, "alice", DEVICE)
    with start_collector(data_dir, *NO_RATE_LIMIT) as url:
        yield url, data_dir


@pytest.fixture
def connection(collector: tuple[str, Path]) -> Iterator[socket.socket]:
    host, port = collector[0].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        yield sock


def _with(**columns: list[Any]) -> dict[str, list[Any]]:
    return {**good_columns(), **columns}


_FOCUS = {**good_columns(n=1), "kind": ["focus"], "key": [None], "char": [None]}
_MOVES = {**good_columns(), "kind": ["move"] * 3, "key": [None] * 3, "char": [None] * 3, "x": [1, 12.9, 3],
          "y": [5, 5, 5]}

# (case, batch object, content types, status, field, row). The batch id is made per content type.
TEXT_NOT_UNICODE = [
    ("lone surrogate in char", _with(char=["a", "\ud800", "a"]), 422, "events.char", 1),
    ("lone surrogate in kind", _with(kind=["key_down", "key_down", "\udc00"]), 422, "events.kind", 2),
    ("lone surrogate in window_title", {**_FOCUS, "window_title": ["notes \ud83d"]}, 422, "events.window_title", 0),
    ("lone surrogate in a column name", _with(**{"\ud800": [1, 2, 3]}), 422, "events.\\ud800", None),
    ("NUL in session_id with a repeated seq", _with(session_id=["s\x00x"] * 3, seq=[0, 0, 1]), 422,
     "events.session_id", 0),
]
COERCED = [
    ("fraction in x", _MOVES, 422, "events.x", 1),
    ("float t_wall_ns", _with(t_wall_ns=[T0, float(T0 + 1000), T0 + 2000]), 422, "events.t_wall_ns", 1),
    ("seq 5.0", _with(seq=[0, 1, 5.0]), 422, "events.seq", 2),
    ("seq true", _with(seq=[0, True, 2]), 422, "events.seq", 1),
    ("NUL in char", _with(char=["a", "\x00", "a"]), 422, "events.char", 1),
    ("NUL in session_id", _with(session_id=["sess\x00"] * 3), 422, "events.session_id", 0),
]
_ENCODINGS = [JSON, MSGPACK]


def _cases() -> list[Any]:
    out = []
    for case, events, status, field, row in TEXT_NOT_UNICODE + COERCED:
        for content_type in _ENCODINGS:
            if "surrogate" in case and content_type == MSGPACK:
                continue  # MessagePack text is UTF-8: it cannot carry a lone surrogate (see the raw case below)
            out.append(pytest.param(f"batch-case-{len(out):04d}", events, content_type, status, field, row,
                                    id=f"{case}, {content_type}"))
    return out


def _post_and_check_health(connection: socket.socket, url: str, body: bytes, content_type: str
                           ) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": content_type, **auth_headers(url, DEVICE)}
    status, _, answer = exchange(connection, "POST", "/v1/batches", body, headers)
    # The same connection answers the next request: a 500 used to drop it.
    health, _, _ = exchange(connection, "GET", "/v1/health")
    assert health == 200
    return status, json.loads(answer)


@pytest.mark.parametrize("batch_id, events, content_type, status, field, row", _cases())
def test_malformed_values_get_a_4xx_naming_the_field_on_a_kept_connection_and_store_nothing(
        collector: tuple[str, Path], connection: socket.socket, batch_id: str, events: dict[str, list[Any]],
        content_type: str, status: int, field: str, row: int | None) -> None:
    url, data_dir = collector
    before = stored(data_dir)
    body = encode(batch(batch_id, events), content_type)
    got, answer = _post_and_check_health(connection, url, body, content_type)
    assert (got, answer["field"], answer["row"]) == (status, field, row), answer
    assert field.split(".")[-1] in answer["error"]
    assert stored(data_dir) == before


@pytest.mark.parametrize("top, field", [({"v": True}, "v"), ({"v": 1.0}, "v"),
                                        ({"\ud800": 1}, "\\ud800"), ({"batch_id": "batch-\ud800-01"}, "batch_id"),
                                        ({"batch_id": "batch-newline\n"}, "batch_id")])
@pytest.mark.parametrize("content_type", _ENCODINGS)
def test_top_level_fields_are_taken_as_sent_or_refused_by_name(
        collector: tuple[str, Path], connection: socket.socket, top: dict[str, Any], field: str,
        content_type: str) -> None:
    url, data_dir = collector
    if content_type == MSGPACK and any("\ud800" in k or "\ud800" in str(v) for k, v in top.items()):
        pytest.skip("MessagePack text cannot carry a lone surrogate")
    before = stored(data_dir)
    obj = {**batch("batch-top-level-01", good_columns()), **top}
    status, answer = _post_and_check_health(connection, url, encode(obj, content_type), content_type)
    assert (status, answer["field"]) == (422, field), answer
    assert stored(data_dir) == before


def test_messagepack_text_that_is_not_utf8_is_refused_as_unreadable(
        collector: tuple[str, Path], connection: socket.socket) -> None:
    url, data_dir = collector
    before = stored(data_dir)
    body = encode(batch("batch-not-utf8-01", _with(char=["a", "\x01\x02\x03", "a"])), MSGPACK)
    body = body.replace(b"\xa3\x01\x02\x03", b"\xa3\xed\xa0\x80")  # the 3-byte form of U+D800: not UTF-8
    status, answer = _post_and_check_health(connection, url, body, MSGPACK)
    assert (status, answer["field"]) == (400, "body"), answer
    assert stored(data_dir) == before


def test_bytes_where_text_belongs_are_refused_not_taken_as_text(
        collector: tuple[str, Path], connection: socket.socket) -> None:
    url, data_dir = collector
    before = stored(data_dir)
    body = encode(batch("batch-bytes-char", _with(char=["a", b"b", "c"])), MSGPACK)
    status, answer = _post_and_check_health(connection, url, body, MSGPACK)
    assert (status, answer["field"], answer["row"]) == (422, "events.char", 1), answer
    assert stored(data_dir) == before


@pytest.mark.parametrize("content_type", _ENCODINGS)
def test_a_valid_batch_is_still_stored_in_both_encodings(collector: tuple[str, Path], connection: socket.socket,
                                                         content_type: str) -> None:
    url, data_dir = collector
    before = stored(data_dir)
    session = f"sess-valid-{content_type.split('/')[1]}"
    body = encode(batch(f"batch-valid-{content_type.split('/')[1]}", good_columns(session)), content_type)
    status, answer = _post_and_check_health(connection, url, body, content_type)
    assert (status, answer["stored"]) == (200, 3), answer
    assert stored(data_dir)[:2] == (before[0] + 1, before[1] + 3)


@pytest.mark.parametrize("fields, field", [
    ({"token": "dcet_\ud800x"}, "body.token"),
    ({"hostname": "desk-\udfff"}, "body.hostname"),
    ({"device_id": "device-\ud800-01"}, "body.device_id"),
])
def test_enrolment_with_text_that_is_not_unicode_names_the_field_and_spends_no_token(
        collector: tuple[str, Path], connection: socket.socket, fields: dict[str, str], field: str) -> None:
    url, data_dir = collector
    token = enrolment_token(data_dir, "alice")
    before = stored(data_dir)
    body = json.dumps({"token": token, "device_id": "device-enrol-01", "hostname": "desk", **fields}).encode()
    status, _, answer = exchange(connection, "POST", "/v1/devices/enrol", body, {"Content-Type": JSON})
    assert (status, json.loads(answer)["field"]) == (422, field), answer
    assert exchange(connection, "GET", "/v1/health")[0] == 200
    assert stored(data_dir) == before
    if field != "body.token":  # the token was not spent: the corrected request enrols with it
        good = json.dumps({"token": token, "device_id": f"device-enrol-{field[5:]}", "hostname": "desk"}).encode()
        assert exchange(connection, "POST", "/v1/devices/enrol", good, {"Content-Type": JSON})[0] == 200


# -- failure 3: bodies built to expand --------------------------------------------------------------

HOSTILE_BYTES = 31 * MIB  # under the 32 MiB body limit with the envelope
RSS_BOUND = 256 * MIB  # growth while 4 of them are refused at once; the old decoder grew by ~2.1 GB for one
# Added to the slowest answer of the idle collector, measured just before in the same run. The old code kept
# health waiting 26.6 s; in a full-suite run on 2 cores (1,093 tests, Xvfb, Chromium and D-Bus left from
# earlier files) the current one measured 108, 117 and 508 ms over idle, and under 100 ms when run alone.
HEALTH_BOUND_S = 0.25


def _envelope(events: bytes, content_type: str) -> bytes:
    head = {"v": 1, "batch_id": "batch-expand-01", "device_id": DEVICE}
    if content_type == JSON:
        return json.dumps(head).encode()[:-1] + b', "events": ' + events + b"}"
    return b"\x84" + msgpack.packb(head, use_bin_type=True)[1:] + msgpack.packb("events") + events


def _hostile_bodies() -> dict[str, tuple[bytes, str]]:
    n = HOSTILE_BYTES // 3
    per = 99_999  # arrays of empty arrays, each array within the element limit
    packed_inner = b"\xdc" + per.to_bytes(2, "big") + b"\x90" * per if per < 65536 else \
        b"\xdd" + per.to_bytes(4, "big") + b"\x90" * per
    outer = HOSTILE_BYTES // len(packed_inner)
    nested = b"\x81" + msgpack.packb("seq") + b"\xdd" + outer.to_bytes(4, "big") + packed_inner * outer
    return {
        "MessagePack: events.seq of arrays of empty arrays": (_envelope(nested, MSGPACK), MSGPACK),
        "MessagePack: one array of 31 Mi empty arrays": (b"\xdd" + HOSTILE_BYTES.to_bytes(4, "big") +
                                                         b"\x90" * HOSTILE_BYTES, MSGPACK),
        "JSON: events.seq of 10 Mi empty arrays": (_envelope(b'{"seq": [' + b"[]," * n + b"[]]}", JSON), JSON),
        "JSON: events.seq of 10 Mi empty objects": (_envelope(b'{"seq": [' + b"{}," * n + b"{}]}", JSON), JSON),
    }


# Polls /v1/health (one kept connection) and the collector's RSS until its stdin closes, then prints
# both as JSON. A process of its own: in this one it would wait on the senders' GIL, not the collector.
_WATCH = """
import json, sys, threading, time
import httpx, psutil
url, process = sys.argv[1], psutil.Process(int(sys.argv[2]))
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
peak, health = [0], []

def sample_rss():  # a thread of its own: a blocked health request must not pause the sampling
    while not done.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        time.sleep(0.005)

threading.Thread(target=sample_rss, daemon=True).start()
with httpx.Client(timeout=60) as client:
    while not done.is_set():
        at, started = time.time(), time.perf_counter()
        status = client.get(url + "/v1/health").status_code
        health.append((at, time.perf_counter() - started, status))
        time.sleep(0.01)
print(json.dumps({"peak_rss": peak[0], "health": health}), flush=True)
"""


def _hostile_round(url: str, pid: int, headers: dict[str, str],
                   bodies: dict[str, tuple[bytes, str]]) -> tuple[float, float, int, dict[str, httpx.Response]]:
    """Four hostile bodies at once while /v1/health is polled: (idle answer, slowest answer, RSS growth, answers)."""
    baseline = psutil.Process(pid).memory_info().rss
    watch = subprocess.Popen([sys.executable, "-c", _WATCH, url, str(pid)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    time.sleep(2.0)  # the reference: how fast the idle collector answers on this machine right now
    hostile_from = time.time()
    answers: dict[str, httpx.Response] = {}

    def send(name: str, body: bytes, content_type: str) -> None:
        answers[name] = httpx.post(f"{url}/v1/batches", content=body, timeout=120,
                                   headers={"Content-Type": content_type, **headers})

    senders = [threading.Thread(target=send, args=(name, *body)) for name, body in bodies.items()]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(timeout=120)
    time.sleep(0.3)
    watched = json.loads(watch.communicate("", timeout=60)[0])
    assert {status for *_, status in watched["health"]} == {200}
    idle = max(seconds for at, seconds, _ in watched["health"] if at < hostile_from)
    slowest = max(seconds for at, seconds, _ in watched["health"] if at >= hostile_from)
    return idle, slowest, watched["peak_rss"] - baseline, answers


def test_bodies_built_to_expand_are_refused_in_bounded_memory_while_health_answers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    enrol_in(data_dir, "alice", DEVICE)
    proc, url = spawn_collector(data_dir, 0, *NO_RATE_LIMIT)
    rounds: list[tuple[float, float]] = []
    try:
        headers = auth_headers(url, DEVICE)
        # Warm up: the first batch loads pyarrow's kernels and the Parquet writer.
        warm = httpx.post(f"{url}/v1/batches", content=encode(batch("batch-warm-0001", good_columns()), MSGPACK),
                          headers={"Content-Type": MSGPACK, **headers}, timeout=60)
        assert warm.status_code == 200, warm.text
        bodies = _hostile_bodies()
        before = stored(data_dir)
        # A blocked event loop shows as one long answer in every round (the old decoder: 14-55 s, 26.6 s
        # measured); on 2 cores the senders and the poller can also lose the CPU for a few hundred ms now
        # and then (1 run in 3 in CI), which a second or third round does not repeat.
        for _ in range(3):
            idle, slowest, grown, answers = _hostile_round(url, proc.pid, headers, bodies)
            assert grown < RSS_BOUND, f"the collector grew by {grown / MIB:.0f} MiB refusing 4 bodies at once"
            for name in bodies:
                assert answers[name].status_code in (400, 422), (name, answers[name].text)
                assert answers[name].json()["field"] in ("body", "events"), (name, answers[name].text)
            rounds.append((idle, slowest))
            if slowest < idle + HEALTH_BOUND_S:
                break
    finally:
        _stop(proc)
    # The idle reference takes out what a loaded machine adds to every answer.
    assert any(slowest < idle + HEALTH_BOUND_S for idle, slowest in rounds), \
        "/v1/health while hostile bodies were refused, slowest vs idle per round: " + \
        ", ".join(f"{slowest:.3f} s vs {idle:.3f} s" for idle, slowest in rounds)
    assert stored(data_dir) == before
