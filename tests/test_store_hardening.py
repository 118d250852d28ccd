"""The store's promises under attack (issue 9): concurrent password guessing, events stamped in the future,
and who can read the files of a data dir. Each test starts real things: a real `deskcorder serve`, real HTTP,
SQLite and PostgreSQL.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import os
import stat
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from deskcorder.events import Event, EventKind, events_to_columns
from deskcorder.store import EventStore, InvalidInput
from deskcorder.store._login_throttle import FREE_FAILURES
from deskcorder.wire import MSGPACK, decode_batch, encode_batch

from .helpers import READ, TEST_ACTOR, auth_headers, enrol, start_collector
from .test_store_event_store import database_url  # noqa: F401  (a fixture: SQLite, and PostgreSQL)

NS = 1_000_000_000
HTML = {"Accept": "text/html,application/xhtml+xml"}
PASSWORD = "dave-right-password"
GUESSERS = 60


def _serve_args(database_url: str | None) -> tuple[str, ...]:  # noqa: F811
    return ("--database-url", database_url) if database_url else ()


def typed(session: str, t0: int, text: str = "hello") -> list[Event]:
    events = [Event(session, 0, 0, t0, EventKind.FOCUS, app_class="Editor", app_process="editor",
                    window_title="notes")]
    events += [Event(session, 1 + i, 1 + i, t0 + (1 + i) * 1_000_000, EventKind.KEY_DOWN, key=c, char=c)
               for i, c in enumerate(text)]
    return events


def post(url: str, device_id: str, events: list[Event], batch_id: str | None = None) -> httpx.Response:
    body = {"v": 1, "batch_id": batch_id or uuid.uuid4().hex, "device_id": device_id,
            "events": events_to_columns(events)}
    return httpx.post(f"{url}/v1/batches", json=body, headers=auth_headers(url, device_id), timeout=30)


# -- failure 4: the login lock-out holds under concurrency -------------------------------------------

def _login_form(url: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=url, headers=HTML, timeout=60)
    html = client.get("/login").text
    marker = 'name="csrf_token" value="'
    return client, html[html.index(marker) + len(marker):].split('"', 1)[0]


def test_sixty_wrong_passwords_at_once_get_no_more_checks_than_five_in_a_row(
        tmp_path: Path, database_url: str | None) -> None:  # noqa: F811
    data_dir = tmp_path / "data"
    with EventStore(data_dir, database_url=database_url) as store:
        enrol(store, "dave", "device-dave")
        store.portal.set_password("dave", PASSWORD, role="employee", actor=TEST_ACTOR)
    with start_collector(data_dir, *_serve_args(database_url)) as url:
        forms = [_login_form(url) for _ in range(GUESSERS)]  # fetched first, so the POSTs leave together
        start = threading.Barrier(GUESSERS)

        def guess(i: int) -> int:
            client, csrf = forms[i]
            start.wait()
            return client.post("/login", data={"login": "dave", "password": f"guess-{i}",
                                               "csrf_token": csrf}).status_code

        with concurrent.futures.ThreadPoolExecutor(GUESSERS) as pool:
            statuses = list(pool.map(guess, range(GUESSERS)))
        # A 401 is an answer after a password check; a 429 is a refusal before any check.
        assert set(statuses) <= {401, 429}, sorted(statuses)
        assert 1 <= statuses.count(401) <= FREE_FAILURES, sorted(statuses)
        client, csrf = _login_form(url)  # and the right password waits out the lock like any other
        assert client.post("/login", data={"login": "dave", "password": PASSWORD,
                                           "csrf_token": csrf}).status_code == 429
        for client, _ in forms:
            client.close()
