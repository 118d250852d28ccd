"""When the store fails, the collector answers 503 with Retry-After and a generic message: paths and SQL
stay in its log, where the operator reads them, and never reach a client.

Real failures of a real `deskcorder serve`: the events folder replaced by a file (every event
file write fails, naming its path) and a table of the control database renamed under it
(every query on it fails, with its SQL).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from deskcorder.events import Event, EventKind, events_to_columns

from .helpers import FUTURE_SKEW_S, _stop, admin_headers, auth_headers, enrol_in, next_utc_midnight_ns, \
    remember_collector

DEVICE = "device-failing-1"
LEAKS = ("select", "from ", "sqlite", "[sql", "sessions_gone", "errno", "control.db", "not a directory")


def _batch(batch_id: str) -> dict:
    t0 = next_utc_midnight_ns()
    events = [Event("sess-failing", i, i * 1000, t0 + i * 1000, EventKind.KEY_DOWN, key="f", char="f")
              for i in range(3)]
    return {"v": 1, "batch_id": batch_id, "device_id": DEVICE, "events": events_to_columns(events)}


def _assert_generic_503(r: httpx.Response, data_dir: Path) -> None:
    assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text
    error = r.json()["error"]
    assert "unavailable" in error and "retry" in error, error
    assert str(data_dir) not in r.text and "/tmp" not in r.text, r.text
    assert not [leak for leak in LEAKS if leak in r.text.lower()], r.text


def _url_from(log: Path, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        for line in log.read_text().splitlines():
            if "listening on http://" in line:
                return line.rsplit(" ", 1)[1]
        time.sleep(0.1)
    raise AssertionError(f"the collector did not start:\n{log.read_text()}")


def test_store_failures_answer_503_without_paths_or_sql_and_log_the_detail(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    enrol_in(data_dir, "alice", DEVICE)
    admin = admin_headers(data_dir)
    log = tmp_path / "collector.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "deskcorder", "serve", "--data-dir", str(data_dir),
                                 "--port", "0", "--max-clock-skew", str(FUTURE_SKEW_S)],
                                stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        url = _url_from(log, proc)
        remember_collector(url, data_dir)
        device = auth_headers(url, DEVICE)
        with httpx.Client(base_url=url, timeout=15) as client:
            assert client.post("/v1/batches", json=_batch("batch-fine-0001"), headers=device).status_code == 200

            # Event files cannot be written: the store's error names the file's path.
            events = data_dir / "events"
            shutil.rmtree(events)
            events.write_text("not a folder\n")
            _assert_generic_503(client.post("/v1/batches", json=_batch("batch-fails-0001"), headers=device), data_dir)

            # A query fails: the store's error carries the SQL.
            with sqlite3.connect(data_dir / "control.db") as db:
                db.execute("ALTER TABLE sessions RENAME TO sessions_gone")
            _assert_generic_503(client.get("/v1/sessions", headers=admin), data_dir)
            assert client.get("/v1/health").status_code == 200  # the collector lives on
    finally:
        _stop(proc)
    logged = log.read_text()  # the operator still gets the detail
    assert str(events) in logged and "no such table: sessions" in logged, logged[-3000:]


def test_the_503_helper_logs_what_it_keeps_from_the_client(caplog) -> None:
    from deskcorder.collect._problems import unavailable
    from deskcorder.store import StoreError

    detail = "control database error while listing sessions: (sqlite3.OperationalError) no such table: sessions " \
             "[SQL: SELECT sessions.session_id FROM sessions] at /srv/deskcorder/control.db"
    with caplog.at_level("ERROR", logger="deskcorder.collect"):
        problem = unavailable("listing sessions", StoreError(detail))
    assert problem.status == 503 and problem.headers == {"Retry-After": "1"}
    assert "SELECT" not in problem.error and "/srv" not in problem.error and "listing sessions" in problem.error
    assert detail in caplog.text
