"""Only enrolled devices upload, each only its own events, within its rate; tokens work once; no secret is kept.

A real `deskcorder serve` process and real HTTP; tokens are issued and devices
revoked with the real `deskcorder device` commands; what was stored is read by
reopening the data dir. The last test runs the real agent in an X session.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import msgpack
import pytest

from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.store import EventStore

from .helpers import TEST_ACTOR, auth_headers, enrol, next_utc_midnight_ns, start_agent, start_collector

T0 = next_utc_midnight_ns()
RATE, BURST = 2, 4  # this module's collector: 2 batches/s per device, 4 at once
SEEN: list[str] = []  # every token and secret handed out here: none may be stored in plain


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deskcorder", "device", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=60)


def body(batch_id: str, device_id: str, n: int = 10) -> bytes:
    events = [Event(f"sess-{batch_id}", i, i * 1000, T0 + i * 1000, EventKind.MOVE, x=i, y=i) for i in range(n)]
    return msgpack.packb({"v": 1, "batch_id": batch_id, "device_id": device_id,
                          "events": events_to_columns(events)}, use_bin_type=True)


def post(url: str, payload: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{url}/v1/batches", content=payload,
                      headers={"Content-Type": "application/msgpack", **headers}, timeout=30)


def bearer(device_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {device_id}:{secret}"}


def enrol_http(url: str, token: str, device_id: str) -> httpx.Response:
    r = httpx.post(f"{url}/v1/devices/enrol", json={"token": token, "device_id": device_id, "hostname": "h"},
                   timeout=10)
    if r.status_code == 200:
        SEEN.append(r.json()["secret"])
    return r


def issue(data_dir: Path, handle: str, *extra: str) -> str:
    result = cli(data_dir, "token", "--employee", handle, *extra)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("dcet_") and "--enrol-token" in result.stderr
    SEEN.append(token)
    return token


def snapshot(data_dir: Path) -> tuple[dict[str, bytes], dict[str, list[tuple]]]:
    """Every byte under events/ and the rows that storing a batch would change."""
    files = {str(p.relative_to(data_dir)): p.read_bytes()
             for p in sorted((data_dir / "events").rglob("*")) if p.is_file()} if (data_dir / "events").exists() else {}
    with contextlib.closing(sqlite3.connect(f"file:{data_dir / 'control.db'}?mode=ro", uri=True)) as db:
        rows = {t: db.execute(f"select * from {t} order by 1").fetchall()
                for t in ("sessions", "batches", "file_sessions", "audit_log")}
        rows["devices"] = db.execute("select device_id, n_batches, n_events from devices order by 1").fetchall()
    return files, rows


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("auth") / "data"
    with EventStore(data_dir) as store:
        enrol(store, "alice", "device-alice-01")
        enrol(store, "bob", "device-bob-01")
        enrol(store, "carol")
    with start_collector(data_dir, "--device-rate", str(RATE), "--device-burst", str(BURST)) as url:
        SEEN.extend(auth_headers(url, d)["Authorization"].rpartition(":")[2]
                    for d in ("device-alice-01", "device-bob-01"))
        yield url, data_dir


def test_an_unenrolled_device_is_refused_with_401_and_nothing_is_stored(server: tuple[str, Path]) -> None:
    url, data_dir = server
    before = snapshot(data_dir)
    for headers in [{}, {"Authorization": "Basic YWxpY2U6cHc="}, {"Authorization": "Bearer no-colon"},
                    bearer("device-nobody-1", "made-up-secret")]:
        r = post(url, body("batch-unenrolled", "device-nobody-1"), headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["WWW-Authenticate"].startswith("Bearer") and r.json()["field"] == "Authorization"
        assert "enrol" in r.json()["error"]
        assert httpx.get(f"{url}/v1/devices/device-nobody-1/status", headers=headers).status_code == 401
    assert snapshot(data_dir) == before


def test_a_wrong_secret_is_refused_with_401_and_nothing_is_stored(server: tuple[str, Path]) -> None:
    url, data_dir = server
    before = snapshot(data_dir)
    bobs_secret = auth_headers(url, "device-bob-01")["Authorization"].rpartition(":")[2]
    for secret in [bobs_secret, bobs_secret[:-1], "x" * 43]:
        r = post(url, body("batch-wrong-secret", "device-alice-01"), bearer("device-alice-01", secret))
        assert r.status_code == 401 and "credential is wrong" in r.json()["error"], r.text
    assert snapshot(data_dir) == before


def test_a_device_cannot_upload_for_another_device_or_employee(server: tuple[str, Path]) -> None:
    url, data_dir = server
    before = snapshot(data_dir)
    bob = auth_headers(url, "device-bob-01")
    forged = post(url, body("batch-forged-1", "device-alice-01"), bob)  # bob's desk, alice's device id
    assert forged.status_code == 403, forged.text
    assert forged.json()["field"] == "device_id" and "device-bob-01" in forged.json()["error"]
    other = httpx.get(f"{url}/v1/devices/device-alice-01/status", headers=bob)
    assert other.status_code == 403 and other.json()["field"] == "device_id"
    assert snapshot(data_dir) == before
    own = post(url, body("batch-bob-own-1", "device-bob-01"), bob)
    assert own.status_code == 200 and own.json()["stored"] == 10
    with EventStore(data_dir) as store:
        assert [s.session_id for s in store.sessions(employee="alice")] == []
        assert [s.session_id for s in store.sessions(employee="bob")] == ["sess-batch-bob-own-1"]


def test_a_revoked_device_gets_403_everywhere_stores_nothing_and_cannot_enrol_again(
        server: tuple[str, Path]) -> None:
    url, data_dir = server
    assert enrol_http(url, issue(data_dir, "alice"), "device-alice-02").status_code == 200
    headers = bearer("device-alice-02", SEEN[-1])
    assert post(url, body("batch-before-revoke", "device-alice-02"), headers).status_code == 200
    revoked = cli(data_dir, "revoke", "device-alice-02", "--reason", "laptop stolen")
    assert revoked.returncode == 0 and "revoked device-alice-02" in revoked.stdout, revoked.stderr

    before = snapshot(data_dir)
    r = post(url, body("batch-after-revoke", "device-alice-02"), headers)
    assert r.status_code == 403 and "revoked" in r.json()["error"], r.text
    status = httpx.get(f"{url}/v1/devices/device-alice-02/status", headers=headers)
    assert status.status_code == 403 and "revoked" in status.json()["error"]
    assert snapshot(data_dir) == before
    again = enrol_http(url, issue(data_dir, "alice"), "device-alice-02")
    assert again.status_code == 409 and "new device" in again.json()["error"]

    listing = cli(data_dir, "list").stdout
    assert any(line.startswith("device-alice-02") and "revoked" in line and "alice" in line
               for line in listing.splitlines()), listing
    with EventStore(data_dir) as store:
        entry = store.audit_entries(action="device.revoke")[-1]
        assert entry.reason == "laptop stolen" and entry.actor.startswith("cli:")
        stored = store.read_events(actor=TEST_ACTOR, purpose="check", device_id="device-alice-02")
        assert set(stored["session_id"].to_pylist()) == {"sess-batch-before-revoke"}  # kept, not uploaded after


def test_an_enrolment_token_works_once_binds_its_employee_and_expires(server: tuple[str, Path]) -> None:
    url, data_dir = server
    token = issue(data_dir, "carol", "--ttl", "10m")
    first = enrol_http(url, token, "device-carol-01")
    assert first.status_code == 200, first.text
    with EventStore(data_dir) as store:
        assert first.json()["employee_id"] == store.employee("carol").employee_id
        assert [d.device_id for d in store.devices(employee="carol")] == ["device-carol-01"]
    headers = bearer("device-carol-01", first.json()["secret"])
    assert httpx.get(f"{url}/v1/devices/device-carol-01/status", headers=headers).json()["recording_allowed"]

    reused = enrol_http(url, token, "device-carol-02")
    assert reused.status_code == 401 and "already used" in reused.json()["error"]
    assert "deskcorder device token --employee" in reused.json()["error"]

    expiring = issue(data_dir, "carol", "--ttl", "1m")
    with contextlib.closing(sqlite3.connect(data_dir / "control.db")) as db, db:  # the minute passes
        db.execute("update enrolment_tokens set expires_at = '2020-01-01 00:00:00.000000' where token_hash = ?",
                   (hashlib.sha256(expiring.encode()).hexdigest(),))
    expired = enrol_http(url, expiring, "device-carol-03")
    assert expired.status_code == 401 and "expired" in expired.json()["error"]
    assert enrol_http(url, "dcet_never-issued", "device-carol-04").status_code == 401
    with EventStore(data_dir) as store:
        assert [d.device_id for d in store.devices(employee="carol")] == ["device-carol-01"]
    assert cli(data_dir, "token", "--employee", "carol", "--ttl", "forever").returncode == 2


def test_a_device_over_its_rate_limit_gets_429_with_retry_after_then_recovers(server: tuple[str, Path]) -> None:
    url, data_dir = server
    assert enrol_http(url, issue(data_dir, "bob"), "device-bob-rate").status_code == 200
    headers = bearer("device-bob-rate", SEEN[-1])
    answers = [post(url, body(f"batch-rate-{i:03d}", "device-bob-rate"), headers) for i in range(BURST + 3)]
    codes = [r.status_code for r in answers]
    assert codes[:BURST] == [200] * BURST and 429 in codes[BURST:], codes
    limited = next(r for r in answers if r.status_code == 429)
    wait = int(limited.headers["Retry-After"])
    assert 1 <= wait <= 1 / RATE + 1 and "batches per second" in limited.json()["error"]
    # Another device is not slowed by this one.
    assert post(url, body("batch-rate-bob", "device-bob-01"), auth_headers(url, "device-bob-01")).status_code == 200
    time.sleep(wait)
    retried = [i for i, r in enumerate(answers) if r.status_code == 429][0]
    again = post(url, body(f"batch-rate-{retried:03d}", "device-bob-rate"), headers)
    assert again.status_code == 200 and again.json()["stored"] == 10
    with EventStore(data_dir) as store:
        (device,) = [d for d in store.devices() if d.device_id == "device-bob-rate"]
        assert device.n_batches == codes.count(200) + 1  # the 429s stored nothing


def test_no_token_or_secret_is_stored_or_audited_in_plain(server: tuple[str, Path]) -> None:
    _, data_dir = server
    assert len(SEEN) >= 8
    raw = b"".join(p.read_bytes() for p in data_dir.glob("control.db*"))
    assert [s for s in SEEN if s.encode() in raw] == []
    with EventStore(data_dir) as store:
        audit = json.dumps([e.as_json() for e in store.audit_entries()])
        assert {"device.token_issued", "device.enrol", "device.revoke"} <= {e.action for e in store.audit_entries()}
    digests = [hashlib.sha256(s.encode()).hexdigest() for s in SEEN]
    assert [s for s in SEEN + digests if s in audit] == []
    with contextlib.closing(sqlite3.connect(data_dir / "control.db")) as db:
        kept = {r[0] for r in db.execute("select secret_hash from device_credentials")} | \
               {r[0] for r in db.execute("select token_hash from enrolment_tokens")}
    assert kept & set(digests), "the store keeps SHA-256 hashes of what it handed out"


@pytest.mark.x11
def test_the_agent_enrols_with_a_token_keeps_its_credential_private_and_reuses_it(tmp_path: Path) -> None:
    from deskcorder._xsession import XSession

    data_dir, state_dir = tmp_path / "data", tmp_path / "agent"
    with EventStore(data_dir) as store:
        enrol(store, "dana")  # an employee, the policy, their consent; no device yet
    token = issue(data_dir, "dana")
    with start_collector(data_dir) as url, XSession() as xs:
        with start_agent(url, state_dir, xs.env, "--enrol-token", token) as agent:
            deadline = time.monotonic() + 10
            while not (state_dir / "credential").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        assert agent.returncode == 0
        credential = json.loads((state_dir / "credential").read_text())
        SEEN.append(credential["secret"])
        assert (state_dir / "credential").stat().st_mode & 0o777 == 0o600
        device_id = (state_dir / "device_id").read_text().strip()
        assert credential["device_id"] == device_id
        with EventStore(data_dir) as store:
            assert credential["employee_id"] == store.employee("dana").employee_id
            assert [d.device_id for d in store.devices(employee="dana")] == [device_id]
            store.authenticate_device(device_id, credential["secret"])
        # A restart needs no token (the used one is ignored) and keeps the same credential.
        with start_agent(url, state_dir, xs.env, "--enrol-token", token):
            pass
        assert json.loads((state_dir / "credential").read_text()) == credential

        # A fresh desk given the used token stops at once, telling the person what to ask for.
        refused = subprocess.run([sys.executable, "-m", "deskcorder", "agent", "--server", url, "--state-dir",
                                  str(tmp_path / "other"), "--enrol-token", token], capture_output=True, text=True,
                                 timeout=60, env={**os.environ, **xs.env})
    assert refused.returncode == 2, refused
    assert "already used" in refused.stderr and "deskcorder device token --employee HANDLE" in refused.stderr
    assert not (tmp_path / "other" / "credential").exists()
