"""The uploader against a real collector: events outside consent are set aside, the rest still flow."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import pytest

from deskcorder.capture import HttpTransport, Spool
from deskcorder.capture._uploader import Uploader
from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.store import EventStore

from .helpers import READ, auth_headers, enrol_in, start_collector

DEVICE = "uploader-device-1"
SESSION = "0123456789abcdef0123456789abcdef"


def _chunk(first_seq: int, t_wall_ns: int, n: int = 4) -> dict:
    events = [Event(session_id=SESSION, seq=first_seq + i, t_mono_ns=10**9 + first_seq + i,
                    t_wall_ns=t_wall_ns + i, kind=EventKind.KEY_DOWN, key="a", char="a") for i in range(n)]
    return events_to_columns(events)


def test_a_batch_from_before_consent_is_dead_lettered_and_the_backlog_behind_it_still_uploads(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    enrol_in(data_dir, "uploader", DEVICE)
    now = time.time_ns()
    spool = Spool(tmp_path / "spool.db")
    spool.append(SESSION, 0, _chunk(0, now))
    spool.append(SESSION, 4, _chunk(4, now - 30 * 86400 * 10**9))  # a month before any consent
    spool.append(SESSION, 8, _chunk(8, now + 1000))
    with start_collector(data_dir) as url:
        uploader = Uploader(spool, HttpTransport(url, auth=lambda: auth_headers(url, DEVICE)), DEVICE, max_events=4)
        assert [uploader.upload_once() for _ in range(3)] == [True, True, True]
        assert uploader.upload_once() is False  # nothing left
    assert (uploader.uploaded, uploader.dead_lettered) == (8, 4)
    assert spool.backlog() == 0 and spool.dead_letter_events() == 4
    (refused,) = spool.dead_letters()
    assert refused["status"] == 403 and "consent" in refused["error"]
    spool.close()
    # Counted, but what was recorded outside consent is not kept on the desk either.
    with contextlib.closing(sqlite3.connect(tmp_path / "spool.db")) as db:
        assert db.execute("SELECT columns FROM dead_letter").fetchall() == [(b"",)]
    with EventStore(data_dir) as store:
        stored = store.read_events(**READ).column("seq").to_pylist()
    assert stored == [0, 1, 2, 3, 8, 9, 10, 11]


@pytest.mark.parametrize("hints, upload, poll", [
    ({"upload_interval_s": 60, "status_poll_s": 5}, 60.0, 5.0),
    ({"upload_interval_s": 86400, "status_poll_s": 3600}, 3600.0, 60.0),  # a poll is never more than a minute apart
    ({"upload_interval_s": 0, "status_poll_s": -1}, 0.1, 0.1),
    ({"upload_interval_s": "60", "status_poll_s": True}, None, None),  # malformed: the agent's own settings
    ({"status_poll_s": float("nan")}, None, None),
    ("every minute", None, None),
    (None, None, None),
])
def test_the_collectors_cadence_hints_are_clamped_or_ignored(hints: object, upload: float | None,
                                                             poll: float | None) -> None:
    from deskcorder.capture._status import status_from_json

    body = {"recording_allowed": True, "policy_version": 1, "reason": "ok", "agent": hints,
            "policy": 'version = 1\nretention_days = 30\nscope_text = "t"\n[[apps]]\ntitle_include = [".*"]\n'}
    status = status_from_json(body)
    assert status.allowed and (status.upload_interval_s, status.status_poll_s) == (upload, poll)
