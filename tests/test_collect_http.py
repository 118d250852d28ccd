"""The collector over real HTTP: each batch is stored once; every bad request gets a precise 4xx, changes nothing.

One real `deskcorder serve` process (uvicorn) per test module or test; real httpx requests.
Devices are enrolled to a consenting employee first (helpers.enrol_in / enrol_over_http) and
every request carries their credential; what happens without that is in test_collect_auth.py
and test_privacy_store_consent.py.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import httpx
import msgpack
import pytest

from deskcorder import __version__
from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.store import EventStore

from .helpers import READ, _read_until, _stop, admin_headers, auth_headers, enrol_in, enrol_over_http, \
    next_utc_midnight_ns, remember_collector, spawn_collector, start_collector

T0 = next_utc_midnight_ns()  # tomorrow 00:00 UTC: after the consent the tests give
MIB = 1024 * 1024


def columns(session: str = "sess-http", n: int = 200, start_seq: int = 0) -> dict[str, list[Any]]:
    events = []
    for i in range(n):
        seq = start_seq + i
        if seq % 3 == 0:
            events.append(Event(session, seq, seq * 1000, T0 + seq * 1000, EventKind.KEY_DOWN, key="a", char="a"))
        elif seq % 3 == 1:
            events.append(Event(session, seq, seq * 1000, T0 + seq * 1000, EventKind.KEY_UP, key="a"))
        else:
            events.append(Event(session, seq, seq * 1000, T0 + seq * 1000, EventKind.MOVE, x=seq % 800, y=7))
    return events_to_columns(events)


def batch(batch_id: str, cols: dict[str, list[Any]] | None = None, device_id: str = "device-http") -> dict[str, Any]:
    return {"v": 1, "batch_id": batch_id, "device_id": device_id, "events": cols if cols is not None else columns()}


def packed(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def post(url: str, body: bytes, content_type: str | None = "application/msgpack", *, device: str = "device-http",
         **kw: Any) -> httpx.Response:
    auth = auth_headers(url, device)
    headers = auth if content_type is None else {"Content-Type": content_type, **auth}
    return httpx.post(f"{url}/v1/batches", content=body, headers=headers, timeout=30, **kw)


def snapshot(data_dir: Path) -> tuple[dict[str, bytes], dict[str, list[tuple]]]:
    """Every byte under events/ (temp files included) and every control-database row."""
    files = {str(p.relative_to(data_dir)): p.read_bytes()
             for p in sorted((data_dir / "events").rglob("*")) if p.is_file()}
    with contextlib.closing(sqlite3.connect(f"file:{data_dir / 'control.db'}?mode=ro", uri=True)) as db:
        rows = {t: db.execute(f"select * from {t} order by 1").fetchall()
                for t in ("devices", "sessions", "batches", "file_sessions", "audit_log", "alembic_version")}
    return files, rows


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("collector") / "data"
    enrol_in(data_dir, "alice")
    with start_collector(data_dir) as url:
        for device_id in ("device-http", "device-list"):
            assert enrol_over_http(url, data_dir, device_id, "alice").status_code == 200
        response = post(url, packed(batch("batch-seed-0001")))
        assert response.status_code == 200, response.text
        yield url, data_dir


def test_health_reports_the_version(server: tuple[str, Path]) -> None:
    url, _ = server
    assert httpx.get(f"{url}/v1/health").json() == {"status": "ok", "version": __version__}


def test_batch_posted_twice_is_stored_once_on_disk(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    body = batch("batch-twice-001", columns(n=1000))
    enrol_in(data_dir, "alice", "device-http")
    with start_collector(data_dir) as url:
        first = post(url, packed(body))
        assert first.status_code == 200 and first.json() == {"batch_id": "batch-twice-001", "stored": 1000,
                                                             "duplicate": False}
        # A retry is recognised even when re-encoded as JSON.
        again = post(url, json.dumps(body).encode(), "application/json")
        assert again.status_code == 200 and again.json() == {"batch_id": "batch-twice-001", "stored": 0,
                                                             "duplicate": True}
    with EventStore(data_dir) as store:  # a new store, after the server stopped
        events = store.read_events(**READ)
        assert events["seq"].to_pylist() == list(range(1000))
        assert events.drop_columns(["device_id"]).to_pydict() == columns(n=1000)
        assert [(d.device_id, d.n_batches, d.n_events) for d in store.devices()] == [("device-http", 1, 1000)]


def test_concurrent_posts_of_one_batch_store_it_once(server: tuple[str, Path]) -> None:
    url, data_dir = server
    body = packed(batch("batch-concurrent", columns("sess-concurrent", 2000)))
    start = threading.Barrier(8)
    results: list[httpx.Response] = []

    def send() -> None:
        with httpx.Client(timeout=30) as client:
            start.wait()
            results.append(client.post(f"{url}/v1/batches", content=body,
                                       headers={"Content-Type": "application/msgpack",
                                                **auth_headers(url, "device-http")}))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200] * 8
    answers = sorted((r.json()["stored"], r.json()["duplicate"]) for r in results)
    assert answers == [(0, True)] * 7 + [(2000, False)]
    sessions = {s["session_id"]: s for s in httpx.get(f"{url}/v1/sessions", headers=admin_headers(data_dir)).json()}
    assert sessions["sess-concurrent"]["n_events"] == 2000
    files, rows = snapshot(data_dir)
    assert len([b for b in rows["batches"] if b[0] == "batch-concurrent"]) == 1
    assert len([f for f in files if "batch-concurrent" in f]) == 1


def test_reused_batch_id_with_other_content_is_409_and_original_intact(server: tuple[str, Path]) -> None:
    url, data_dir = server
    assert post(url, packed(batch("batch-reused-01", columns("sess-reused", 50)))).status_code == 200
    before = snapshot(data_dir)
    response = post(url, packed(batch("batch-reused-01", columns("sess-reused", 51))))
    assert response.status_code == 409
    assert response.json()["field"] == "batch_id" and "batch-reused-01" in response.json()["error"]
    assert snapshot(data_dir) == before


def _mutate(path: str, value: Any = None, *, delete: bool = False) -> dict[str, Any]:
    body = batch("batch-bad-00001", columns("sess-bad", 20))
    *parents, last = path.split(".")
    target = body
    for part in parents:
        target = target[part]
    if delete:
        del target[last]
    elif callable(value):
        value(target[last])
    else:
        target[last] = value
    return body


def _set_row(column: str, row: int, value: Any) -> Any:
    def apply(values: list[Any]) -> None:
        values[row] = value
    return apply


_WELL_FORMED = packed(batch("batch-bad-00001", columns("sess-bad", 20)))

# (case, content type, body, status, field, row)
MALFORMED: list[tuple[str, str | None, bytes, int, str, int | None]] = [
    ("bad JSON", "application/json", b'{"v": 1, "batch_id": ', 400, "body", None),
    ("bad msgpack", "application/msgpack", b"\xc1\x00\x01", 400, "body", None),
    ("truncated msgpack", "application/msgpack", _WELL_FORMED[:-7], 400, "body", None),
    ("deeply nested JSON", "application/json", b"[" * 50_000 + b"]" * 50_000, 400, "body", None),
    ("wrong content type", "text/plain", json.dumps(batch("batch-bad-00001")).encode(), 415, "Content-Type", None),
    ("no content type", None, _WELL_FORMED, 415, "Content-Type", None),
    ("body not an object", "application/json", b"[1, 2]", 422, "body", None),
    ("wrong wire version", "application/msgpack", packed(_mutate("v", 2)), 422, "v", None),
    ("missing column", "application/msgpack", packed(_mutate("events.t_mono_ns", delete=True)), 422,
     "events.t_mono_ns", None),
    ("unknown column", "application/msgpack", packed(_mutate("events.mouse_speed", [1] * 20)), 422,
     "events.mouse_speed", None),
    ("wrong type", "application/msgpack", packed(_mutate("events.seq", _set_row("seq", 4, "four"))), 422,
     "events.seq", 4),
    ("column lengths differ", "application/msgpack", packed(_mutate("events.t_wall_ns", [T0] * 19)), 422,
     "events.t_wall_ns", None),
    ("unknown kind", "application/msgpack", packed(_mutate("events.kind", _set_row("kind", 5, "teleport"))),
     422, "events.kind", 5),
    ("key_down without key", "application/msgpack", packed(_mutate("events.key", _set_row("key", 3, None))),
     422, "events.key", 3),
    ("duplicate (session, seq)", "application/msgpack", packed(_mutate("events.seq", _set_row("seq", 9, 8))),
     422, "events.seq", 8),
    ("negative seq", "application/msgpack", packed(_mutate("events.seq", _set_row("seq", 6, -6))), 422,
     "events.seq", 6),
    ("too long string", "application/msgpack",
     packed(_mutate("events.window_title", _set_row("window_title", 2, "w" * 5000))), 422, "events.window_title", 2),
    ("no events", "application/json", json.dumps(batch("batch-bad-00001", {"session_id": [], "seq": [],
     "t_mono_ns": [], "t_wall_ns": [], "kind": []})).encode(), 422, "events.seq", None),
    ("unknown top-level field", "application/msgpack", packed(_mutate("priority", "high")), 422, "priority", None),
    ("bad batch_id", "application/msgpack", packed(_mutate("batch_id", "../../x")), 422, "batch_id", None),
    ("bad device_id", "application/json", json.dumps(_mutate("device_id", 12345678)).encode(), 422,
     "device_id", None),
    ("oversized body", "application/msgpack", b"\x00" * (32 * MIB + 1), 413, "body", None),
]


@pytest.mark.parametrize("case, content_type, body, status, field, row", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_batch_gets_a_precise_4xx_and_changes_nothing(
        server: tuple[str, Path], case: str, content_type: str | None, body: bytes, status: int, field: str,
        row: int | None) -> None:
    url, data_dir = server
    before = snapshot(data_dir)
    response = post(url, body, content_type)
    assert response.status_code == status, response.text
    answer = response.json()
    assert set(answer) == {"error", "field", "row"}
    assert (answer["field"], answer["row"]) == (field, row), answer
    assert field.split(".")[-1] in answer["error"], answer["error"]
    assert snapshot(data_dir) == before


def test_chunked_body_over_the_limit_is_cut_off_with_413(server: tuple[str, Path]) -> None:
    url, data_dir = server
    before = snapshot(data_dir)

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"\x00" * MIB

    response = post(url, chunks())  # type: ignore[arg-type]  # no Content-Length: read and counted
    assert response.status_code == 413 and response.json()["field"] == "body"
    assert snapshot(data_dir) == before


def test_declared_oversized_body_is_refused_before_it_is_sent(server: tuple[str, Path]) -> None:
    url, _ = server
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        auth = auth_headers(url, "device-http")["Authorization"].encode()
        sock.sendall(b"POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Type: application/msgpack\r\n"
                     b"Authorization: " + auth + b"\r\n"
                     b"Content-Length: 10737418240\r\n\r\n")  # 10 GiB announced, none sent
        answer = b""
        while chunk := sock.recv(65536):  # the collector closes the connection after answering
            answer += chunk
    head, _, body = answer.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 413"), head
    assert json.loads(body)["error"] == "body is 10737418240 bytes; the limit is 33554432 bytes " \
                                        "(send fewer events per batch)"


def test_unknown_routes_and_methods_answer_in_the_error_shape(server: tuple[str, Path]) -> None:
    url, _ = server
    missing = httpx.get(f"{url}/v1/nothing-here")
    assert missing.status_code == 404 and "/v1/nothing-here" in missing.json()["error"]
    wrong = httpx.get(f"{url}/v1/batches")
    assert wrong.status_code == 405 and set(wrong.json()) == {"error", "field", "row"}


def test_sessions_and_devices_list_what_was_stored_for_an_admin(server: tuple[str, Path]) -> None:
    url, data_dir = server
    assert post(url, packed(batch("batch-list-0001", columns("sess-list", 30), "device-list")),
                device="device-list").status_code == 200
    sessions = {s["session_id"]: s for s in httpx.get(f"{url}/v1/sessions", headers=admin_headers(data_dir)).json()}
    assert sessions["sess-list"] == {"session_id": "sess-list", "device_id": "device-list", "first_t_wall_ns": T0,
                                     "last_t_wall_ns": T0 + 29_000, "n_events": 30}
    devices = {d["device_id"]: d for d in httpx.get(f"{url}/v1/devices", headers=admin_headers(data_dir)).json()}
    assert (devices["device-list"]["n_batches"], devices["device-list"]["n_events"]) == (1, 30)
    assert devices["device-list"]["first_seen"].endswith("+00:00")


def test_busy_collector_answers_429_with_retry_after(tmp_path: Path) -> None:
    code = ("import sys; from deskcorder.collect import run_server; "
            "run_server(sys.argv[1], port=0, log_level='warning', max_inflight=0)")
    enrol_in(tmp_path / "data", "alice", "device-http")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "data")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = _read_until(proc, re.compile(r"listening on (http://\S+)"), 30).group(1)
        remember_collector(url, tmp_path / "data")
        response = post(url, packed(batch("batch-busy-0001")))
        assert response.status_code == 429 and response.headers["Retry-After"] == "1"
        assert "retry" in response.json()["error"]
        assert httpx.get(f"{url}/v1/sessions", headers=admin_headers(tmp_path / "data")).json() == []
    finally:
        _stop(proc)


def test_two_collector_processes_on_one_data_dir_store_a_contested_batch_once(tmp_path: Path) -> None:
    """Cross-process races are settled by the manifest's primary key: one content wins, whole."""
    data_dir = tmp_path / "data"
    enrol_in(data_dir, "alice", "device-http")
    first, url_a = spawn_collector(data_dir)
    second, url_b = spawn_collector(data_dir)
    try:
        contents = {"A": columns("sess-contest", 3000), "B": columns("sess-contest", 2999)}
        bodies = {name: packed(batch("batch-contested", cols)) for name, cols in contents.items()}
        start = threading.Barrier(8)
        answers: list[tuple[str, int, dict[str, Any]]] = []

        def send(i: int) -> None:
            name, url = "AB"[i % 2], (url_a, url_b)[(i // 2) % 2]
            with httpx.Client(timeout=30) as client:
                start.wait()
                r = client.post(f"{url}/v1/batches", content=bodies[name],
                                headers={"Content-Type": "application/msgpack", **auth_headers(url, "device-http")})
                answers.append((name, r.status_code, r.json()))

        threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        _stop(first)
        _stop(second)
    [winner] = [name for name, status, answer in answers if status == 200 and not answer["duplicate"]]
    for name, status, answer in answers:
        if name == winner:
            assert status == 200, answer
        else:
            assert status == 409 and answer["field"] == "batch_id", answer
    with EventStore(data_dir) as store:
        stored = store.read_events(**READ)
        assert stored.drop_columns(["device_id"]).to_pydict() == contents[winner]
        assert [(d.n_batches, d.n_events) for d in store.devices()] == [(1, len(contents[winner]["seq"]))]


def test_serve_on_a_taken_port_exits_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "deskcorder", "serve", "--port", str(port),
                               "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert not (tmp_path / "data").exists()  # nothing created before the port was ours
