"""Subject access: `export_employee` writes everything stored about one person to a zip they can read, and
nothing about anyone else. Each test opens the archive and compares every file with what the store holds.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any, Iterator

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from deskcorder.policy import consent_text
from deskcorder.store import Conflict, EventStore, NotFound, StoreError
from deskcorder.store._lifecycle._export import ARCHIVE_FILES
from deskcorder.store._db._tables import device_credentials, enrolment_tokens

from .helpers import READ, TEST_ACTOR
from .privacy_rig import (  # noqa: F401  (database_url: a fixture)
    DEVICES,
    DISPLAY_NAME,
    OKAPI,
    TYPED,
    ZEBRA,
    database_url,
    populate,
    sqlite_only,
    traces,
    typed_text,
)


@pytest.fixture
def store(tmp_path: Path, database_url: str | None) -> Iterator[EventStore]:  # noqa: F811
    with EventStore(tmp_path / "data", database_url=database_url) as store:
        populate(store)
        store.record_consent(ZEBRA, "withdraw", policy_version=None, method="portal", actor=TEST_ACTOR)
        store.record_consent(ZEBRA, "give", policy_version=1, method="portal", actor=TEST_ACTOR)
        store.portal.pause_recording(ZEBRA, actor=TEST_ACTOR)
        store.read_events(actor="analyst:kim", purpose="a quality check", employee=ZEBRA)
        yield store


def open_archive(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def as_json(files: dict[str, bytes], name: str) -> Any:
    return json.loads(files[name])


def test_the_archive_holds_everything_stored_about_the_person(store: EventStore, tmp_path: Path) -> None:
    out = store.export_employee(ZEBRA, tmp_path / "zebra.zip", actor="dpo:lee", reason="subject access, ticket 7")
    about = [e.id for e in store.audit_entries(employee=ZEBRA)]  # before the reads below add their own
    assert out == tmp_path / "zebra.zip" and out.stat().st_mode & 0o077 == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    files = open_archive(out)
    assert set(files) == set(ARCHIVE_FILES) | {"policies/v1.toml"}
    readme = files["README.txt"].decode()
    assert all(name in readme for name in [*ARCHIVE_FILES[1:], "policies/"]) and "deskcorder erase" in readme

    me = store.employee(ZEBRA)
    person = as_json(files, "employee.json")
    assert (person["employee_id"], person["handle"], person["display_name"]) == (me.employee_id, ZEBRA,
                                                                                DISPLAY_NAME[ZEBRA])
    assert person["portal_account"]["login"] == ZEBRA and person["portal_account"]["role"] == "employee"
    assert person["recording_paused_since"] is not None

    devices = as_json(files, "devices.json")
    assert [(d["device_id"], d["hostname"], d["n_events"]) for d in devices] == [
        (d.device_id, d.hostname, d.n_events) for d in store.devices(employee=ZEBRA)]
    assert sorted(d["device_id"] for d in devices) == sorted(DEVICES[ZEBRA])
    assert all(d["enrolled_at"] and d["revoked_at"] is None for d in devices)

    consents = as_json(files, "consents.json")
    assert [(c["action"], c["policy_version"], c["method"]) for c in consents] == [
        ("give", 1, "api"), ("withdraw", 1, "portal"), ("give", 1, "portal")]
    assert consents[0]["scope_text"] == consent_text(store.current_policy().policy, 1)  # what they were shown
    assert "“Privacy tests: every application.”" in consents[0]["scope_text"]
    assert files["policies/v1.toml"].decode() == files["policy.toml"].decode() == store.current_policy().text

    sessions = as_json(files, "sessions.json")
    assert [(s["session_id"], s["n_events"]) for s in sessions] == [
        (s.session_id, s.n_events) for s in store.sessions(employee=ZEBRA)]

    stored = store.read_events(**READ, employee=ZEBRA)
    assert pq.read_table(io.BytesIO(files["events.parquet"])).equals(stored)
    lines = [json.loads(line) for line in files["events.jsonl"].decode().splitlines()]
    assert [(r["session_id"], r["seq"], r["kind"]) for r in lines] == [
        (r["session_id"], r["seq"], r["kind"]) for r in stored.to_pylist()]
    assert "".join(r["char"] for r in lines if r["kind"] == "key_down") == TYPED[ZEBRA] * 2
    assert lines[0]["time"].startswith(str(sessions[0]["first_time"])[:10])
    table = list(csv.DictReader(io.StringIO(files["events.csv"].decode())))
    assert len(table) == stored.num_rows and table[0].keys() >= {"time", "kind", "char", "window_title"}
    assert {r["window_title"] for r in table if r["window_title"]} == {TYPED[ZEBRA]}

    audit = [json.loads(line) for line in files["audit.jsonl"].decode().splitlines()]
    assert [e["id"] for e in audit] == about
    assert {"employee.add", "device.enrol", "consent.give", "consent.withdraw", "recording.pause",
            "events.read"} <= {e["action"] for e in audit}
    assert (audit[-1]["action"], audit[-1]["actor"], audit[-1]["reason"]) == (
        "employee.export", "dpo:lee", "subject access, ticket 7")  # the archive lists its own export


@sqlite_only
def test_the_archive_holds_nothing_about_anyone_else_and_no_secret(store: EventStore, tmp_path: Path) -> None:
    everything = b"".join(open_archive(store.export_employee(ZEBRA, tmp_path / "z.zip", actor=TEST_ACTOR))
                          .values())
    for trace in traces(OKAPI):
        assert trace.encode() not in everything, trace
    assert store.employee(OKAPI).employee_id.encode() not in everything
    # Hashes that only check a login or an upload are not the person's to take away (the README says so).
    with store._engine.connect() as conn:
        hashes = [*conn.execute(select(device_credentials.c.secret_hash)).scalars(),
                  *conn.execute(select(enrolment_tokens.c.token_hash)).scalars()]
    assert hashes and not any(h.encode() in everything for h in hashes)
    assert b"$argon2" not in everything


@sqlite_only
def test_an_unknown_person_is_a_clear_error_and_writes_nothing(store: EventStore, tmp_path: Path) -> None:
    before = len(store.audit_entries())
    with pytest.raises(NotFound, match="no employee 'nobody-here', so there is nothing to export"):
        store.export_employee("nobody-here", tmp_path / "n.zip", actor=TEST_ACTOR)
    with pytest.raises(StoreError, match="does not exist"):
        store.export_employee(ZEBRA, tmp_path / "no-such-folder" / "z.zip", actor=TEST_ACTOR)
    assert len(store.audit_entries()) == before and list(tmp_path.glob("*.zip")) == []


@sqlite_only
def test_a_person_being_erased_cannot_be_exported(store: EventStore, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from deskcorder.store._events._backends import LocalEventFiles

    def disk_fails(files: LocalEventFiles, keys: list[str]) -> int:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(LocalEventFiles, "delete", disk_fails)
    with pytest.raises(StoreError, match="run the same `deskcorder erase` again"):
        store.erase_employee(ZEBRA, actor=TEST_ACTOR, reason="ticket 8")
    with pytest.raises(Conflict, match="being erased"):
        store.export_employee(ZEBRA, tmp_path / "z.zip", actor=TEST_ACTOR)
    assert not (tmp_path / "z.zip").exists()
    monkeypatch.undo()
    store.erase_employee(ZEBRA, actor=TEST_ACTOR, reason="ticket 8")  # the disk is fixed: it finishes
    assert typed_text(store.read_events(**READ)) == TYPED[OKAPI]
