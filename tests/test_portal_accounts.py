"""The store's side of the portal (``EventStore.portal``), on SQLite and PostgreSQL.

Passwords are kept only as argon2 hashes, login tokens only as SHA-256; a new
password ends every login; a pause turns the device status off without
touching consent; erasing an employee removes their account, logins and pause.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select, update

from deskcorder.store import Conflict, EventStore, InvalidInput, NotFound
from deskcorder.store._db._tables import portal_accounts, portal_logins, recording_pauses

from .helpers import enrol
from .test_store_event_store import database_url  # noqa: F401  (SQLite, and PostgreSQL when there)

PASSWORD = "a long enough password"


@pytest.fixture
def store(tmp_path: Path, database_url: str | None) -> EventStore:  # noqa: F811
    s = EventStore(tmp_path / "data", database_url=database_url)
    enrol(s, "alice", "device-alice")
    enrol(s, "bob", "device-bob", consent=False)
    yield s
    s.close()


def test_passwords_and_login_tokens_are_stored_only_as_hashes(store: EventStore) -> None:
    account = store.portal.set_password("alice", PASSWORD, role="employee", actor="tests")
    token, login = store.portal.open_login(account, actor="tests")
    with store._engine.connect() as conn:
        stored_hash = conn.execute(select(portal_accounts.c.password_hash)).scalar()
        stored_token = conn.execute(select(portal_logins.c.token_hash)).scalar()
    assert stored_hash.startswith("$argon2id$") and PASSWORD not in stored_hash
    assert token not in stored_token and len(stored_token) == 64
    assert store.portal.find_login(token) == login
    assert store.portal.authenticate("alice", PASSWORD) == account
    assert store.portal.authenticate("alice", PASSWORD + "x") is None
    assert store.portal.authenticate("nobody", PASSWORD) is None


def test_setting_a_password_ends_every_login_of_that_account(store: EventStore) -> None:
    account = store.portal.set_password("alice", PASSWORD, role="employee", actor="tests")
    token, _ = store.portal.open_login(account, actor="tests")
    store.portal.set_password("alice", PASSWORD + "!", role="employee", actor="tests")
    assert store.portal.find_login(token) is None
    assert store.portal.authenticate("alice", PASSWORD) is None


def test_accounts_refuse_short_passwords_unknown_employees_and_admin_logins_that_are_handles(
        store: EventStore) -> None:
    with pytest.raises(InvalidInput, match="at least 10 characters"):
        store.portal.set_password("alice", "short", role="employee", actor="tests")
    with pytest.raises(NotFound, match="deskcorder employee add carol"):
        store.portal.set_password("carol", PASSWORD, role="employee", actor="tests")
    with pytest.raises(Conflict, match="admin-alice"):
        store.portal.set_password("alice", PASSWORD, role="admin", actor="tests")
    store.portal.set_password("ops", PASSWORD, role="admin", actor="tests")
    with pytest.raises(Conflict, match="admin account"):
        store.portal.set_password("ops", PASSWORD, role="employee", actor="tests")


def test_a_pause_stops_recording_without_touching_consent_and_is_audited(store: EventStore) -> None:
    since = store.portal.pause_recording("alice", actor="employee:x")
    assert store.portal.pause_recording("alice", actor="employee:x") == since  # repeating keeps the first
    status = store.device_status("device-alice")
    assert not status.recording_allowed and "paused by you in the portal" in status.reason
    assert status.consent is not None and status.consent.action == "give"
    assert store.portal.consent_coverage().paused == 1
    assert store.portal.resume_recording("alice", actor="employee:x") is True
    assert store.portal.resume_recording("alice", actor="employee:x") is False
    assert store.device_status("device-alice").recording_allowed
    actions = [e.action for e in store.audit_entries(employee="alice")]
    assert actions.count("recording.pause") == 1 and actions.count("recording.resume") == 1


def test_erasing_an_employee_removes_their_account_logins_and_pause(store: EventStore) -> None:
    account = store.portal.set_password("alice", PASSWORD, role="employee", actor="tests")
    store.portal.set_password("bob", PASSWORD, role="employee", actor="tests")
    token, _ = store.portal.open_login(account, actor="tests")
    store.portal.pause_recording("alice", actor="tests")
    store.erase_employee("alice", "tests", "asked to")
    assert store.portal.find_login(token) is None
    assert [a.login for a in store.portal.accounts()] == ["bob"]
    with store._engine.connect() as conn:
        assert conn.execute(select(portal_logins)).all() == []
        assert conn.execute(select(recording_pauses)).all() == []


def test_consent_coverage_and_the_audit_search(store: EventStore) -> None:
    coverage = store.portal.consent_coverage()
    assert (coverage.employees, coverage.in_force, coverage.never, coverage.policy_version) == (2, 1, 1, 1)
    store.record_consent("alice", "withdraw", policy_version=None, method="portal", actor="tests")
    assert store.portal.consent_coverage().withdrawn == 1
    consent = store.portal.search_audit(action="consent")
    assert [e.action for e in consent] == ["consent.withdraw", "consent.give"]  # newest first, sub-actions too
    today = dt.datetime.now(dt.timezone.utc).date()
    assert store.portal.search_audit(action="consent", day=today - dt.timedelta(days=1)) == []
    assert len(store.portal.search_audit(day=today, limit=2)) == 2
    assert "consent.withdraw" in store.portal.audit_actions()
    assert [p.version for p in store.portal.policy_history()] == [1]


def test_a_lock_out_ends_by_itself_and_old_failures_are_forgotten(store: EventStore) -> None:
    from deskcorder.store import TooManyLogins
    from deskcorder.store._people._login_throttle import FREE_FAILURES
    from deskcorder.store._db._tables import login_failures

    account = store.portal.set_password("alice", PASSWORD, role="employee", actor="tests")
    for _ in range(FREE_FAILURES):
        assert store.portal.authenticate("alice", "wrong password") is None
    with pytest.raises(TooManyLogins, match="locked for (2[5-9]|30) s more") as locked:
        store.portal.authenticate("alice", PASSWORD)
    assert locked.value.retry_after_s <= 30
    with store._engine.begin() as conn:  # the lock's time passes
        conn.execute(update(login_failures).values(locked_until=dt.datetime.now(dt.timezone.utc)))
    # One more failure doubles the lock (60 s); a right password after it ends would clear everything.
    assert store.portal.authenticate("alice", "wrong again") is None
    with pytest.raises(TooManyLogins, match="locked for (5[5-9]|60) s more"):
        store.portal.authenticate("alice", PASSWORD)
    with store._engine.begin() as conn:
        conn.execute(update(login_failures).values(locked_until=None))
    assert store.portal.authenticate("alice", PASSWORD) == account
    with store._engine.connect() as conn:
        assert conn.execute(select(login_failures)).all() == []
    # Failures an hour apart never add up to a lock.
    for _ in range(FREE_FAILURES * 2):
        assert store.portal.authenticate("alice", "slow guess") is None
        with store._engine.begin() as conn:
            conn.execute(update(login_failures).values(
                last_failure_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)))
    assert store.portal.authenticate("alice", PASSWORD) == account
