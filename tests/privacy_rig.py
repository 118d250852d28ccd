"""What the privacy tests share: two people whose events carry a distinctive typed text, and ways to look
for that text everywhere it could hide (every byte under the data dir, every row of every table).

zebra-person types "ZEBRAFROG-TITLE-123" (one key_down per character, ``key`` and ``char``) in a window
of that title, on two devices; okapi-person types "OKAPIMOTH-TITLE-456" on one. After zebra-person is
erased, nothing of theirs may be found anywhere, and okapi-person must be untouched.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, select

from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.store import EventStore
from deskcorder.wire import MSGPACK, decode_batch, encode_batch

from .helpers import TEST_ACTOR, enrol
from .test_store_event_store import database_url  # noqa: F401  (a fixture: SQLite, and PostgreSQL)

ZEBRA, OKAPI = "zebra-person", "okapi-person"
TYPED = {ZEBRA: "ZEBRAFROG-TITLE-123", OKAPI: "OKAPIMOTH-TITLE-456"}
DISPLAY_NAME = {ZEBRA: "Zebra Frogsworth", OKAPI: "Okapi Mothley"}
DEVICES = {ZEBRA: ("zebra-desk-0001", "zebra-laptop-02"), OKAPI: ("okapi-desk-0001",)}
PORTAL_PASSWORD = "correct horse battery staple"

# retention_days is the one thing these tests vary; everything else allows all.
POLICY = """\
version = {version}
scope_text = "Privacy tests: every application."
retention_days = {days}

[[apps]]
title_include = [".*"]
"""


def policy(days: int = 30, version: int = 1) -> str:
    return POLICY.format(days=days, version=version)


def typed_events(session: str, word: str, t0: int) -> list[Event]:
    """A focus on a window titled ``word``, then ``word`` typed: one key_down per character."""
    events = [Event(session, 0, 1, t0, EventKind.FOCUS, app_class="Notes", app_process="notes",
                    window_title=word)]
    events += [Event(session, 1 + i, 2 + i, t0 + (1 + i) * 1_000_000, EventKind.KEY_DOWN, key=c.lower(), char=c)
               for i, c in enumerate(word)]
    return events


def write_typing(store: EventStore, device_id: str, word: str, t0: int | None = None,
                 session: str | None = None) -> str:
    """Store one batch of ``word`` typed on ``device_id`` at ``t0`` (default: now); returns the session id."""
    session = session or uuid.uuid4().hex
    t0 = time.time_ns() if t0 is None else t0
    body = encode_batch(uuid.uuid4().hex, device_id, events_to_columns(typed_events(session, word, t0)), MSGPACK)
    store.write_batch(decode_batch(body, MSGPACK))
    return session


def typed_text(table: Any, device_ids: tuple[str, ...] | None = None) -> str:
    """The characters typed in a read_events table (in session, seq order)."""
    rows = table.select(["device_id", "kind", "char"]).to_pylist()
    return "".join(r["char"] for r in rows if r["kind"] == "key_down" and (device_ids is None or
                                                                            r["device_id"] in device_ids))


def populate(store: EventStore, days: int = 30, *, portal: bool = True) -> None:
    """Both people, their devices (enrolled with tokens), consent, their typing, and (``portal``) a portal
    account for zebra-person (its argon2 hash takes 0.1 s, so tests that do not need it leave it out)."""
    store.set_policy(policy(days), actor=TEST_ACTOR)
    for handle in (ZEBRA, OKAPI):
        store.add_employee(handle, actor=TEST_ACTOR, display_name=DISPLAY_NAME[handle])
        enrol(store, handle, *DEVICES[handle])
        for device_id in DEVICES[handle]:
            write_typing(store, device_id, TYPED[handle])
    if portal:
        store.portal.set_password(ZEBRA, PORTAL_PASSWORD, role="employee", actor=TEST_ACTOR)


def traces(handle: str) -> list[str]:
    """Everything that would point at ``handle``: their typing, login, name, device ids and hostnames."""
    return [TYPED[handle], TYPED[handle].split("-")[0], handle, DISPLAY_NAME[handle],
            *DEVICES[handle], *(f"{d}.test" for d in DEVICES[handle])]


def disk_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.rglob("*") if p.is_file())


def disk_bytes(data_dir: Path) -> bytes:
    """Every byte of every file under the data dir: events, control.db and its -wal/-shm, keys."""
    return b"\x00".join(p.read_bytes() for p in disk_files(data_dir))


def rows_mentioning(store: EventStore, needle: str | bytes) -> dict[str, int]:
    """How many rows of each control-database table hold ``needle`` in any column (any backend)."""
    needle_b = needle if isinstance(needle, bytes) else needle.encode()
    meta = MetaData()
    meta.reflect(store._engine)
    found: dict[str, int] = {}
    with store._engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                values = [v if isinstance(v, bytes) else str(v).encode() for v in row if v is not None]
                if any(needle_b in v for v in values):
                    found[table.name] = found.get(table.name, 0) + 1
    return found


def cli(data_dir: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None,
        database_url: str | None = None) -> subprocess.CompletedProcess:
    """`python -m deskcorder ARGS --data-dir DATA_DIR`, for real."""
    extra = ["--database-url", database_url] if database_url else []
    return subprocess.run([sys.executable, "-m", "deskcorder", *args, "--data-dir", str(data_dir), *extra],
                          capture_output=True, text=True, timeout=120, input=input, env=env)


def clean_error(result: subprocess.CompletedProcess, *words: str) -> None:
    """Exit status 2, one `error: ...` line naming ``words``, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


# Tests that use ``database_url`` run on SQLite and PostgreSQL; this marks the ones where the backend
# makes no difference, to run them once (a direct parametrization overrides the fixture).
sqlite_only = pytest.mark.parametrize("database_url", [None], ids=["sqlite"])


