"""Start real deskcorder processes for tests: the collector and the agent, each in its own process."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import httpx

if TYPE_CHECKING:
    from deskcorder.store import EventStore

_LISTENING = re.compile(r"listening on (http://\S+)")


def _read_until(proc: subprocess.Popen, pattern: re.Pattern, timeout: float) -> re.Match:
    """Read the process's output until pattern matches; keep draining it afterwards so it never blocks."""
    found: list[re.Match] = []
    seen: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if not found and (m := pattern.search(line)):
                found.append(m)
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(timeout) or not found:
        proc.kill()
        raise RuntimeError(f"{proc.args} did not print {pattern.pattern!r}; output:\n{''.join(seen)}")
    return found[0]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# Tests stamp events from next_utc_midnight_ns() (up to a day ahead) plus a few hours: collectors and
# writers they start accept that much clock skew, unless a test passes its own --max-clock-skew.
FUTURE_SKEW_S = 2 * 86400


def spawn_collector(data_dir: Path, port: int = 0, *extra: str) -> tuple[subprocess.Popen, str]:
    """`deskcorder serve --init` on data_dir (created if new), on ``port`` (0: a free one); returns (process, URL)."""
    skew = () if "--max-clock-skew" in extra else ("--max-clock-skew", str(FUTURE_SKEW_S))
    proc = subprocess.Popen(
        [sys.executable, "-m", "deskcorder", "serve", "--init", "--data-dir", str(data_dir), "--port", str(port),
         *skew, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = _read_until(proc, _LISTENING, 30).group(1)
    httpx.get(f"{url}/v1/health", timeout=5).raise_for_status()
    remember_collector(url, data_dir, extra[extra.index("--database-url") + 1] if "--database-url" in extra else None)
    return proc, url


def remember_collector(url: str, data_dir: Path, database_url: str | None = None) -> None:
    """Note which store a collector started by a test serves (``auth_headers(url, ...)`` uses it)."""
    _COLLECTOR_DBS[url] = _db_key(data_dir, database_url)


@contextlib.contextmanager
def start_collector(data_dir: Path, *extra: str) -> Iterator[str]:
    proc, url = spawn_collector(data_dir, 0, *extra)
    try:
        yield url
    finally:
        _stop(proc)


@contextlib.contextmanager
def start_agent(server_url: str, state_dir: Path, env: dict[str, str], *extra: str) -> Iterator[subprocess.Popen]:
    """Run `deskcorder agent` until the block ends; waits until its listeners are attached."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "deskcorder", "agent", "--server", server_url, "--state-dir", str(state_dir), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **env})
    _read_until(proc, re.compile(r"session"), 30)
    time.sleep(0.5)  # the X RECORD context attaches asynchronously after start
    try:
        yield proc
    finally:
        _stop(proc)


# -- people, policy and consent: what must exist before a device's events are stored ----------

# Allows every application, keeps data for ten years: tests about storage, not about scope.
ALLOW_ALL_POLICY = """\
version = 1
scope_text = "Tests: every application, any time."
retention_days = 3650

[[apps]]
title_include = [".*"]
"""
TEST_ACTOR = "tests"
READ = {"actor": TEST_ACTOR, "purpose": "check what the test stored"}


# Secrets of the devices enrolled by this test process, by (control database, device id): tests reuse
# device ids across data dirs. Collectors started here are remembered with their database, so a test
# can ask for a device's header by collector URL too.
_SECRETS: dict[tuple[str, str], str] = {}
_COLLECTOR_DBS: dict[str, str] = {}


def _db_key(where: "Path | str | EventStore", database_url: str | None = None) -> str:
    """The control database behind a data dir (+ database_url), a store, or a collector URL started here."""
    from sqlalchemy.engine import make_url

    if isinstance(where, str) and where.startswith("http"):
        return _COLLECTOR_DBS[where]
    if not isinstance(where, (str, Path)):  # an EventStore
        url = where._engine.url
        return f"pg:{url.database}" if url.get_backend_name() == "postgresql" else f"dir:{where.data_dir.resolve()}"
    if database_url is not None:
        return f"pg:{make_url(database_url).database}"
    return f"dir:{Path(where).resolve()}"


def enrol(store: "EventStore", handle: str, *device_ids: str, consent: bool = True) -> str:
    """Make ``handle`` an employee with these devices enrolled and (by default) consent in force; returns
    employee_id. Each device gets a credential through a real enrolment token; ``auth_headers(device_id)``
    gives the header it uploads with.

    Idempotent, so a test can call it on every (re)open. Sets ALLOW_ALL_POLICY when no policy exists.
    """
    from deskcorder.store import NotFound, StoreError

    if store.current_policy().version == 0:
        store.set_policy(ALLOW_ALL_POLICY, actor=TEST_ACTOR)
    try:
        employee_id = store.employee(handle).employee_id
    except NotFound:
        employee_id = store.add_employee(handle, actor=TEST_ACTOR).employee_id
    db = _db_key(store)
    for device_id in device_ids:
        if (db, device_id) in _SECRETS:
            try:
                store.authenticate_device(device_id, _SECRETS[db, device_id])
                continue
            except StoreError:
                pass  # a new store at the same place: enrol it again
        token = store.issue_enrolment_token(handle, actor=TEST_ACTOR)
        _SECRETS[db, device_id] = store.enrol_device(token, device_id, f"{device_id}.test", actor=TEST_ACTOR)[1]
    if consent:
        status = store.device_status(device_ids[0]) if device_ids else None
        if status is None or not status.recording_allowed:
            store.record_consent(handle, "give", policy_version=store.current_policy().version, method="api",
                                 actor=TEST_ACTOR)
    return employee_id


def enrol_in(data_dir: Path, handle: str, *device_ids: str, database_url: str | None = None) -> str:
    """``enrol`` on the store in data_dir (opened and closed here; a running collector sees it at once)."""
    from deskcorder.store import EventStore

    with EventStore(data_dir, database_url=database_url) as store:
        return enrol(store, handle, *device_ids)


def auth_headers(where: "Path | str | EventStore", device_id: str, *, database_url: str | None = None
                 ) -> dict[str, str]:
    """The Authorization header of a device enrolled by ``enrol``/``enrol_in``/``enrol_over_http``.

    ``where``: the data dir (with ``database_url`` if any), the store, or the URL of a collector
    started by these helpers.
    """
    from deskcorder.collect._device_auth import bearer

    return bearer(device_id, _SECRETS[_db_key(where, database_url), device_id])


_ADMIN = ("tests-admin", "tests-admin-password")
_ADMINS: set[str] = set()  # control databases that have the tests' admin account


def admin_headers(data_dir: Path, *, database_url: str | None = None) -> dict[str, str]:
    """HTTP Basic of an admin portal account of this store (made on first use): GET /v1/sessions, /v1/devices."""
    import base64

    from deskcorder.store import EventStore

    key = _db_key(data_dir, database_url)
    if key not in _ADMINS:
        with EventStore(data_dir, database_url=database_url) as store:
            store.portal.set_password(*_ADMIN, role="admin", actor=TEST_ACTOR)
        _ADMINS.add(key)
    return {"Authorization": "Basic " + base64.b64encode(":".join(_ADMIN).encode()).decode()}


def install_credential(state_dir: Path, data_dir: Path, device_id: str) -> None:
    """Give an agent state dir this enrolled device's id and credential, as its own enrolment would."""
    from deskcorder.capture import save_credential

    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "device_id").write_text(device_id + "\n")
    save_credential(state_dir, device_id, _SECRETS[_db_key(data_dir), device_id], "")


def enrolment_token(data_dir: Path, handle: str, *, database_url: str | None = None, ttl_s: float = 3600) -> str:
    """A fresh one-time token for one device of ``handle``, as `deskcorder device token` prints it."""
    from deskcorder.store import EventStore

    with EventStore(data_dir, database_url=database_url) as store:
        return store.issue_enrolment_token(handle, actor=TEST_ACTOR, ttl_s=ttl_s)


def enrol_over_http(url: str, data_dir: Path, device_id: str, handle: str,
                    hostname: str = "test-host") -> httpx.Response:
    """What an agent's first start does: exchange a new token for ``handle`` (POST /v1/devices/enrol)."""
    token = enrolment_token(data_dir, handle)
    r = httpx.post(f"{url}/v1/devices/enrol", json={"token": token, "device_id": device_id, "hostname": hostname},
                   timeout=10)
    if r.status_code == 200:
        _SECRETS[_COLLECTOR_DBS[url], device_id] = r.json()["secret"]
    return r


def decrypted_file(store: "EventStore", rel_path: str) -> bytes:
    """The Parquet bytes of one stored event file (tests look inside files; callers use read_events)."""
    from deskcorder.store._people._employees import unwrap_key
    from deskcorder.store._events._reader import select_files
    from deskcorder.store._events._sealed import unseal

    device_id = rel_path.split("/")[2].removeprefix("device=")
    with store._engine.connect() as conn:
        key = select_files(conn, device_id=device_id).keys[device_id]
    return unseal(store.files.get(rel_path), unwrap_key(store._wrapper, key), key.key_id, rel_path)


def next_utc_midnight_ns() -> int:
    """Tomorrow 00:00 UTC in ns: events must be stamped after the consent a test gives, so tests use the future."""
    import datetime as dt

    today = dt.datetime.now(dt.timezone.utc).date()
    return int(dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.timezone.utc).timestamp()) * 10**9
