"""The audit log: who read, exported, built, changed or erased what, when and why; hash-chained, so an edited,
deleted, inserted or reordered row is found, at that row.

Tampering is done the way someone with database access would: raw SQL against the control database
(SQLite and PostgreSQL), behind the store's back. The CLI's `deskcorder audit verify` on the same is
in test_cli_admin.py.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import insert, select, text, update

from deskcorder.dataset import build_from_store
from deskcorder.store import EventStore, InvalidInput
from deskcorder.store._people._audit import _row_hash, iso_utc
from deskcorder.store._db._tables import audit_log

from .privacy_rig import DEVICES, OKAPI, ZEBRA, cli, database_url, policy, populate, sqlite_only  # noqa: F401


@pytest.fixture
def store(tmp_path: Path, database_url: str | None) -> Iterator[EventStore]:  # noqa: F811
    with EventStore(tmp_path / "data", database_url=database_url) as store:
        populate(store, portal=False)
        yield store


def sql(store: EventStore, statement: Any, **params: Any) -> None:
    """Run SQL on the control database behind the store's back (text, or a Core statement)."""
    with store._engine.begin() as conn:
        conn.execute(text(statement) if isinstance(statement, str) else statement, params)


def row(store: EventStore, id_: int) -> dict[str, Any]:
    with store._engine.connect() as conn:
        return dict(conn.execute(select(audit_log).where(audit_log.c.id == id_)).mappings().one())


def put_back(store: EventStore, saved: dict[str, Any]) -> None:
    sql(store, insert(audit_log).values(**saved))


def test_reads_exports_builds_policy_changes_and_erasures_are_audited(store: EventStore, tmp_path: Path) -> None:
    start = dt.datetime.now(dt.timezone.utc)
    first_new = store.audit_entries(limit=1)[0].id + 1
    session = store.sessions(employee=OKAPI)[0].session_id
    store.read_events(actor="analyst:kim", purpose="check the quality of one session", session_id=session)
    store.export_employee(OKAPI, tmp_path / "okapi.zip", actor="dpo:lee", reason="subject access, ticket 12")
    build_from_store(store, tmp_path / "ds", actor="ml:sam", purpose="train the model, v3")
    store.set_policy(policy(days=7, version=2), actor="admin:ops", note="keep a week only")
    store.erase_employee(ZEBRA, actor="dpo:lee", reason="erasure request, ticket 13")
    end = dt.datetime.now(dt.timezone.utc)

    okapi_id = store.employee(OKAPI).employee_id
    new = [e for e in store.audit_entries() if e.id >= first_new]
    assert all(start <= e.at <= end for e in new)
    got = [(e.action, e.actor, e.reason) for e in new]
    assert got[0] == ("events.read", "analyst:kim", "check the quality of one session")
    assert ("employee.export", "dpo:lee", "subject access, ticket 12") in got
    assert ("events.read", "ml:sam", "train the model, v3") in got  # the build's read of raw events ...
    assert ("dataset.build", "ml:sam", "train the model, v3") in got  # ... and the build itself
    assert ("policy.set", "admin:ops", "keep a week only") in got
    assert got[-2:] == [("erasure.start", "dpo:lee", "erasure request, ticket 13"),
                        ("erasure.complete", "dpo:lee", "erasure request, ticket 13")]

    read = new[0]
    assert read.target == f"employee:{okapi_id}"
    assert read.details == {"employee_ids": [okapi_id], "n_events": 20, "session_id": session,
                            "devices": [EventStore.device_ref(DEVICES[OKAPI][0])]}
    (export,) = [e for e in new if e.action == "employee.export"]
    assert export.target == f"employee:{okapi_id}" and export.details["n_events"] == 20
    (build,) = [e for e in new if e.action == "dataset.build"]
    assert build.details["out"] == str((tmp_path / "ds").resolve())
    (change,) = [e for e in new if e.action == "policy.set"]
    assert (change.target, change.details["version"], change.details["previous_version"]) == ("policy:v2", 2, 1)
    assert change.details["retention_days"] == 7
    assert store.verify_audit_chain() is None


@sqlite_only
def test_a_read_that_does_not_say_who_and_why_is_refused_and_reads_nothing(store: EventStore) -> None:
    before = len(store.audit_entries())
    for who, why in (("", "a purpose"), ("analyst:kim", ""), ("analyst:kim", "   ")):
        with pytest.raises(InvalidInput, match="audit log"):
            store.read_events(actor=who, purpose=why)
    assert len(store.audit_entries()) == before


# Each edit changes one column of row 3 to something a tamperer might want.
EDITS: dict[str, Any] = {
    "at": lambda at: at - dt.timedelta(hours=1),
    "actor": lambda _: "someone-else",
    "action": lambda _: "events.nothing",
    "target": lambda _: "employee:emp_0000",
    "reason": lambda _: "nothing to see",
    "details": lambda _: "{}",
    "prev_hash": lambda _: "0" * 64,
    "hash": lambda _: "0" * 64,
}


def test_editing_any_column_of_a_row_is_detected_at_that_row(store: EventStore) -> None:
    assert store.verify_audit_chain() is None
    original = row(store, 3)
    for column, edit in EDITS.items():
        edited = edit(original[column])
        assert edited != original[column]
        sql(store, update(audit_log).where(audit_log.c.id == 3).values({column: edited}))
        assert store.verify_audit_chain() == 3, column
        sql(store, update(audit_log).where(audit_log.c.id == 3).values({column: original[column]}))
        assert store.verify_audit_chain() is None, column  # put back: intact, so it was exactly that edit


def test_deleting_a_row_is_detected_wherever_it_was(store: EventStore) -> None:
    last = store.audit_entries(limit=1)[0].id
    saved = {i: row(store, i) for i in (1, 4, last)}
    for id_ in (4, 1, last):
        sql(store, "DELETE FROM audit_log WHERE id = :id", id=id_)
        assert store.verify_audit_chain() == id_
        put_back(store, saved[id_])
        assert store.verify_audit_chain() is None


def test_reordering_rows_is_detected(store: EventStore) -> None:
    # Rows 2 and 4 trade places, each keeping its own (valid) hash.
    sql(store, "UPDATE audit_log SET id = -id WHERE id IN (2, 4)")
    sql(store, "UPDATE audit_log SET id = CASE id WHEN -2 THEN 4 ELSE 2 END WHERE id IN (-2, -4)")
    assert store.verify_audit_chain() == 2


@sqlite_only
def test_a_row_added_behind_the_stores_back_is_detected(store: EventStore) -> None:
    last = store.audit_entries(limit=1)[0]
    at = dt.datetime.now(dt.timezone.utc)
    forged = {"id": last.id + 1, "at": at, "actor": "tests", "action": "events.read", "target": "events",
              "reason": "forged", "details": "{}", "prev_hash": last.hash}
    forged["hash"] = _row_hash(forged["id"], iso_utc(at), "tests", "events.read", "events", "forged", "{}", last.hash)
    put_back(store, forged)
    assert store.verify_audit_chain() == last.id + 1  # the head row still ends the chain at the real last entry


@sqlite_only
def test_a_tamperer_who_rehashes_one_row_is_caught_at_the_next(store: EventStore) -> None:
    r = row(store, 3)
    details = json.dumps({**json.loads(r["details"]), "n_events": 0}, sort_keys=True, separators=(",", ":"))
    rehashed = _row_hash(3, iso_utc(r["at"]), r["actor"], r["action"], r["target"], r["reason"], details,
                         r["prev_hash"])
    sql(store, "UPDATE audit_log SET details = :d, hash = :h WHERE id = 3", d=details, h=rehashed)
    assert store.verify_audit_chain() == 4


@sqlite_only
def test_rewriting_the_whole_chain_is_caught_only_against_a_pinned_head(store: EventStore, tmp_path: Path,
                                                                        database_url: str | None) -> None:  # noqa: F811
    pinned = store.audit_entries(limit=1)[0].hash
    # Someone who can write the database recomputes every hash after editing row 2, and the head too.
    prev = "0" * 64
    for entry in store.audit_entries():
        r = row(store, entry.id)
        reason = "nothing happened" if entry.id == 2 else r["reason"]
        digest = _row_hash(r["id"], iso_utc(r["at"]), r["actor"], r["action"], r["target"], reason, r["details"], prev)
        sql(store, "UPDATE audit_log SET reason = :r, prev_hash = :p, hash = :h WHERE id = :id",
            r=reason, p=prev, h=digest, id=entry.id)
        prev = digest
    sql(store, "UPDATE audit_head SET last_hash = :h", h=prev)
    assert store.verify_audit_chain() is None  # tamper-evident, not tamper-proof: the docs say so
    result = cli(store.data_dir, "audit", "verify", "--expect-head", pinned, database_url=database_url)
    assert result.returncode == 1 and pinned in result.stderr and "rewritten" in result.stderr
    fresh = cli(store.data_dir, "audit", "verify", "--expect-head", prev, database_url=database_url)
    assert fresh.returncode == 0, fresh.stderr


def test_concurrent_appenders_never_fork_the_chain(store: EventStore) -> None:
    first = store.audit_entries(limit=1)[0].id
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            for i in range(15):
                store.audit(f"worker:{worker}", "dataset.build", "dataset", f"run {i}", {"i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    entries = store.audit_entries()
    assert [e.id for e in entries] == list(range(1, first + 91))
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:]))
    assert store.verify_audit_chain() is None


@sqlite_only
def test_entries_about_an_employee_include_reads_that_touched_several(store: EventStore) -> None:
    store.read_events(actor="analyst:kim", purpose="everyone, for a quality report")
    about = store.audit_entries(employee=OKAPI)
    okapi_id = store.employee(OKAPI).employee_id
    assert about[-1].action == "events.read" and about[-1].target == "events"
    assert okapi_id in about[-1].details["employee_ids"] and len(about[-1].details["employee_ids"]) == 2
    assert {e.action for e in about} >= {"employee.add", "device.enrol", "consent.give", "events.read"}
    assert all(e.target == f"employee:{okapi_id}" or okapi_id in e.details.get("employee_ids", [])
               for e in about)
