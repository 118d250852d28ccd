"""Encryption at rest, and erasure of one person: their key first, then their files, then their rows.

Every test builds a real data dir (``privacy_rig.populate``): zebra-person typed "ZEBRAFROG-TITLE-123"
on two devices, okapi-person "OKAPIMOTH-TITLE-456" on one. What is on disk is checked by reading every
byte under the data dir (event files, control.db, its -wal and -shm, master.key, pseudonym.key); what
the database holds by reading every row of every table, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select

from deskcorder.store import (
    MASTER_KEY_ENV,
    Conflict,
    EventStore,
    InvalidInput,
    NotFound,
    NotPermitted,
    StaticMasterKey,
    StoreError,
    TamperedData,
)
from deskcorder.store._people._employees import DataKey, unwrap_key
from deskcorder.store._events._sealed import HEADER_BYTES, sealed_key_id, unseal
from deskcorder.store._db._tables import employee_keys

from .helpers import READ, TEST_ACTOR, decrypted_file
from .privacy_rig import (
    DEVICES,
    OKAPI,
    PORTAL_PASSWORD,
    TYPED,
    ZEBRA,
    clean_error,
    cli,
    database_url,  # noqa: F401  (fixture: every erasure test runs on SQLite and PostgreSQL)
    disk_bytes,
    populate,
    rows_mentioning,
    traces,
    typed_text,
    write_typing,
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    with EventStore(data_dir) as store:
        populate(store)
    return data_dir


def event_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "events").rglob("*.parquet"))


def wrapped_keys(store: EventStore) -> dict[str, DataKey]:
    with store._engine.connect() as conn:
        return {r.employee_id: DataKey(r.employee_id, r.key_id, r.wrapped_key, r.master_key_id)
                for r in conn.execute(select(employee_keys))}


# -- encryption at rest ----------------------------------------------------------------------------------


def test_event_files_hold_no_plaintext_but_read_back_whole(data_dir: Path) -> None:
    files = event_files(data_dir)
    assert len(files) == 3  # one batch per device, all today
    with EventStore(data_dir) as store:
        for path in files:
            raw = path.read_bytes()
            rel = path.relative_to(data_dir).as_posix()
            assert raw[:4] == b"DCEV" and b"PAR1" not in raw
            for word in TYPED.values():
                assert word.encode() not in raw and word.split("-")[0].encode() not in raw
            # The control: the same file decrypted is Parquet that holds the word in the clear, so the
            # search above would have found it had the file not been encrypted.
            plain = decrypted_file(store, rel)
            assert plain[:4] == b"PAR1" and any(word.encode() in plain for word in TYPED.values())
        events = store.read_events(**READ)
    assert typed_text(events, DEVICES[ZEBRA]) == TYPED[ZEBRA] * 2
    assert typed_text(events, DEVICES[OKAPI]) == TYPED[OKAPI]
    assert set(events.column("window_title").drop_null().to_pylist()) == set(TYPED.values())


def test_each_employee_has_their_own_data_key(data_dir: Path) -> None:
    with EventStore(data_dir) as store:
        keys = wrapped_keys(store)
        ids = {h: store.employee(h).employee_id for h in (ZEBRA, OKAPI)}
        raw = {unwrap_key(store._wrapper, keys[ids[h]]) for h in (ZEBRA, OKAPI)}
        assert len(raw) == 2 and all(len(k) == 32 for k in raw)
        for handle in (ZEBRA, OKAPI):
            for device_id in DEVICES[handle]:
                (path,) = (data_dir / "events").rglob(f"device={device_id}/*.parquet")
                assert sealed_key_id(path.read_bytes(), "x") == keys[ids[handle]].key_id
    # The master key file is private, and the data keys are stored only wrapped.
    assert (data_dir / "master.key").stat().st_mode & 0o077 == 0
    everything = disk_bytes(data_dir)
    assert not any(k in everything for k in raw)


def test_a_wrong_master_key_is_a_clear_error_and_yields_no_plaintext(data_dir: Path, tmp_path: Path) -> None:
    wrong = StaticMasterKey(os.urandom(32), source="a test")
    with EventStore(data_dir, key_wrapper=wrong) as store:
        before = len(store.audit_entries())
        with pytest.raises(StoreError, match="master key") as caught:
            store.read_events(**READ)
        assert "DESKCORDER_MASTER_KEY" in str(caught.value) and "master.key" in str(caught.value)
        with pytest.raises(StoreError, match="master key"):
            store.export_employee(ZEBRA, tmp_path / "z.zip", actor=TEST_ACTOR)
        assert len(store.audit_entries()) == before  # nothing was read, so no read is claimed
    assert not (tmp_path / "z.zip").exists()
    # Through the CLI, with the wrong key in the environment: one clean line, exit 2, no archive.
    env = {**os.environ, MASTER_KEY_ENV: base64.b64encode(os.urandom(32)).decode()}
    result = cli(data_dir, "export", "--employee", ZEBRA, "--out", str(tmp_path / "z.zip"), env=env)
    clean_error(result, "master key")
    assert not (tmp_path / "z.zip").exists()
    assert TYPED[ZEBRA] not in result.stdout + result.stderr
    bad = cli(data_dir, "export", "--employee", ZEBRA, "--out", str(tmp_path / "z.zip"),
              env={**os.environ, MASTER_KEY_ENV: "not base64!"})
    clean_error(bad, MASTER_KEY_ENV, "base64")


def test_the_master_key_can_come_from_the_environment(data_dir: Path, tmp_path: Path) -> None:
    moved = tmp_path / "data-elsewhere"
    shutil.copytree(data_dir, moved)
    key_text = (moved / "master.key").read_text()
    (moved / "master.key").unlink()  # kept apart from the data, as the docs recommend
    os.environ[MASTER_KEY_ENV] = key_text.strip()
    try:
        with EventStore(moved) as store:
            assert typed_text(store.read_events(**READ), DEVICES[OKAPI]) == TYPED[OKAPI]
    finally:
        del os.environ[MASTER_KEY_ENV]
    assert not (moved / "master.key").exists()  # the environment's key was used, no new file made
    with pytest.raises(StoreError, match="32"):
        StaticMasterKey(b"short", source="a test")


def test_a_missing_master_key_is_not_replaced_by_a_new_one(data_dir: Path, tmp_path: Path) -> None:
    (data_dir / "master.key").rename(tmp_path / "master.key.offsite")
    with EventStore(data_dir) as store:
        for needs_the_key in (lambda: store.read_events(**READ),
                              lambda: store.add_employee("new-person", actor=TEST_ACTOR)):
            with pytest.raises(StoreError, match="master.key is missing.*restore it from your backup"):
                needs_the_key()
        assert [e.handle for e in store.employees()] == [OKAPI, ZEBRA]  # nobody added under another key
        # What needs no key still works, erasure included.
        assert store.verify_audit_chain() is None
        store.erase_employee(ZEBRA, actor=TEST_ACTOR, reason="ticket DPO-16")
    assert not (data_dir / "master.key").exists()
    (tmp_path / "master.key.offsite").rename(data_dir / "master.key")
    with EventStore(data_dir) as store:
        assert typed_text(store.read_events(**READ)) == TYPED[OKAPI]


def test_a_master_key_readable_by_others_is_refused(data_dir: Path) -> None:
    (data_dir / "master.key").chmod(0o644)
    with pytest.raises(StoreError, match="chmod 600"):
        EventStore(data_dir)


def test_an_altered_or_swapped_event_file_fails_authentication(data_dir: Path) -> None:
    zebra = next((data_dir / "events").rglob(f"device={DEVICES[ZEBRA][0]}/*.parquet"))
    okapi = next((data_dir / "events").rglob(f"device={DEVICES[OKAPI][0]}/*.parquet"))
    original = zebra.read_bytes()
    flipped = bytearray(original)
    flipped[HEADER_BYTES + 10] ^= 0x01
    zebra.write_bytes(bytes(flipped))
    with EventStore(data_dir) as store:
        with pytest.raises(TamperedData, match="failed authentication"):
            store.read_events(**READ, employee=ZEBRA)
        # Another person's file put in its place: refused on the key id, before any decryption.
        zebra.write_bytes(okapi.read_bytes())
        with pytest.raises(TamperedData, match="does not belong"):
            store.read_events(**READ, employee=ZEBRA)
        zebra.write_bytes(original)
        assert typed_text(store.read_events(**READ, employee=ZEBRA)) == TYPED[ZEBRA] * 2


class EnvelopeKms:
    """A stand-in for a KMS client: wraps data keys with AES-GCM under a key that never leaves it."""

    def __init__(self) -> None:
        self._key = AESGCM.generate_key(bit_length=256)
        self.calls = 0

    @property
    def key_id(self) -> str:
        return "kms:projects/test/keys/deskcorder"

    def wrap(self, data_key: bytes) -> bytes:
        self.calls += 1
        nonce = os.urandom(12)
        return nonce + AESGCM(self._key).encrypt(nonce, data_key, b"deskcorder")

    def unwrap(self, wrapped: bytes) -> bytes:
        self.calls += 1
        return AESGCM(self._key).decrypt(wrapped[:12], wrapped[12:], b"deskcorder")


def test_the_master_key_can_live_in_a_kms(tmp_path: Path) -> None:
    kms = EnvelopeKms()
    with EventStore(tmp_path / "data", key_wrapper=kms) as store:
        populate(store)
        assert typed_text(store.read_events(**READ, employee=ZEBRA)) == TYPED[ZEBRA] * 2
        assert {k.master_key_id for k in wrapped_keys(store).values()} == {kms.key_id}
    assert kms.calls >= 4 and not (tmp_path / "data" / "master.key").exists()


# -- erasure ------------------------------------------------------------------------------------------


def test_erasure_leaves_no_trace_of_the_person_and_keeps_everyone_else(
        tmp_path: Path, database_url: str | None) -> None:
    data_dir = tmp_path / "data"
    backup = tmp_path / "stolen-backup"
    with EventStore(data_dir, database_url=database_url) as store:
        populate(store)
        zebra_id = store.employee(ZEBRA).employee_id
        zebra_key = wrapped_keys(store)[zebra_id]
        for trace in traces(ZEBRA):  # the traces are really there before: the checks below can fail
            assert rows_mentioning(store, trace) or trace in (TYPED[ZEBRA], TYPED[ZEBRA].split("-")[0]), trace
        shutil.copytree(data_dir / "events", backup)  # copies of their files that erasure cannot reach
        copies = [(p.read_bytes(), "events/" + p.relative_to(backup).as_posix())
                  for d in DEVICES[ZEBRA] for p in backup.rglob(f"device={d}/*.parquet")]
        their_key = unwrap_key(store._wrapper, zebra_key)
        assert len(copies) == 2 and all(b"PAR1" in unseal(data, their_key, zebra_key.key_id, rel)
                                        for data, rel in copies)  # the copies open, while the key exists

        report = store.erase_employee(ZEBRA, actor=TEST_ACTOR, reason="ticket DPO-17")
        assert (report.employee_id, report.key_destroyed, report.devices, report.batches) == (zebra_id, True, 2, 2)
        assert report.files_deleted == 2 and report.consents == 1 and report.wal_truncated

        # No row of any table names them; only the audit log keeps their opaque id.
        for trace in traces(ZEBRA):
            assert rows_mentioning(store, trace) == {}, trace
        assert rows_mentioning(store, zebra_key.wrapped) == {}
        assert set(rows_mentioning(store, zebra_id)) == {"audit_log"}
        # No tool brings their events back; the other person's are all there.
        with pytest.raises(NotFound):
            store.read_events(**READ, employee=ZEBRA)
        everyone = store.read_events(**READ)
        assert typed_text(everyone) == TYPED[OKAPI]
        assert set(everyone.column("device_id").to_pylist()) == set(DEVICES[OKAPI])
        with pytest.raises(NotFound, match="nothing to export"):
            store.export_employee(ZEBRA, tmp_path / "z.zip", actor=TEST_ACTOR)
        assert store.sessions(employee=OKAPI) and len(store.sessions()) == 1
        assert store.devices() == store.devices(employee=OKAPI)
        with pytest.raises(NotPermitted):
            write_typing(store, DEVICES[ZEBRA][0], "AFTER-ERASURE")

        # The copies are ciphertext that no key left in the store opens.
        remaining = [unwrap_key(store._wrapper, k) for k in wrapped_keys(store).values()]
        assert len(remaining) == 1
        for data, rel in copies:
            for key in remaining:
                with pytest.raises(TamperedData):
                    unseal(data, key, sealed_key_id(data, rel), rel)

        erasures = [e for e in store.audit_entries() if e.action.startswith("erasure.")]
        assert [(e.action, e.target, e.reason) for e in erasures] == [
            ("erasure.start", f"employee:{zebra_id}", "ticket DPO-17"),
            ("erasure.complete", f"employee:{zebra_id}", "ticket DPO-17")]
        assert erasures[1].details == {"files_deleted": 2, "batches": 2, "sessions": 2, "devices": 2,
                                       "consents": 1}
        assert store.verify_audit_chain() is None
        assert store.portal.authenticate(ZEBRA, PORTAL_PASSWORD) is None  # their portal login went too
        assert [a.login for a in store.portal.accounts()] == []

        if database_url is None:
            # SQLite: the database files are in the data dir; search their bytes while the store is
            # still open (closing it would checkpoint and delete the WAL, hiding what it held).
            assert (data_dir / "control.db-wal").exists()
            everything = disk_bytes(data_dir)
            for trace in traces(ZEBRA):
                assert trace.encode() not in everything, trace
            assert zebra_key.wrapped not in everything
            assert TYPED[OKAPI].split("-")[0].encode() not in everything  # encrypted, not erased
            assert not list((data_dir / "events").rglob(f"device={DEVICES[ZEBRA][0]}"))


def test_no_dataset_built_afterwards_holds_an_erased_person(data_dir: Path, tmp_path: Path) -> None:
    with EventStore(data_dir) as store:
        store.erase_employee(ZEBRA, actor=TEST_ACTOR, reason="ticket DPO-18")
    build = subprocess.run([sys.executable, "-m", "deskcorder", "dataset", "build", "--data-dir", str(data_dir),
                            "--out", str(tmp_path / "ds")], capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    dataset = b"".join(p.read_bytes() for p in (tmp_path / "ds").rglob("*") if p.is_file())
    assert dataset and b"ZEBRAFROG" not in dataset and ZEBRA.encode() not in dataset
    assert json.loads((tmp_path / "ds" / "stats.json").read_text())["persons"] == 1


def test_erasure_while_the_collector_has_the_database_open(data_dir: Path) -> None:
    from .helpers import start_collector

    with start_collector(data_dir):
        result = cli(data_dir, "erase", "--employee", ZEBRA, "--reason", "ticket DPO-19", "--yes")
        assert result.returncode == 0, result.stderr
        assert "warning" not in result.stderr  # the WAL was emptied although another process has it open
        everything = disk_bytes(data_dir)
    for trace in traces(ZEBRA):
        assert trace.encode() not in everything, trace


# A subprocess erases zebra-person and is killed with SIGKILL at one point of the erasure.
_KILLED_ERASURE = textwrap.dedent("""
    import os, signal, sys
    from deskcorder.store import EventStore
    from deskcorder.store._lifecycle import _erasure
    from deskcorder.store._events._backends import LocalEventFiles

    def die(*_args, **_kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    point = sys.argv[2]
    if point == "key-destroyed":  # the key's transaction committed, nothing else done
        _erasure._vacuum = die
    elif point == "some-files-deleted":
        real_delete = LocalEventFiles.delete
        LocalEventFiles.delete = lambda files, keys: (real_delete(files, keys[:1]), die())
    elif point == "rows-deleted-uncommitted":
        real_append = _erasure._audit.append
        _erasure._audit.append = lambda conn, **kw: die() if kw["action"] == "erasure.complete" else real_append(
            conn, **kw)
    with EventStore(sys.argv[1]) as store:
        store.erase_employee("zebra-person", actor="tests", reason="ticket DPO-20")
""")


@pytest.mark.parametrize("point", ["key-destroyed", "some-files-deleted", "rows-deleted-uncommitted"])
def test_an_erasure_killed_midway_hides_everything_and_a_rerun_finishes_it(data_dir: Path, point: str) -> None:
    with EventStore(data_dir) as store:
        zebra_id = store.employee(ZEBRA).employee_id
        zebra_key = wrapped_keys(store)[zebra_id]
    killed = subprocess.run([sys.executable, "-c", _KILLED_ERASURE, str(data_dir), point],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = [p for d in DEVICES[ZEBRA] for p in (data_dir / "events").rglob(f"device={d}/*.parquet")]
    assert len(left) == {"key-destroyed": 2, "some-files-deleted": 1, "rows-deleted-uncommitted": 0}[point]

    # Half-erased: the key is gone, nothing of theirs is read, stored, exported or consented any more.
    with EventStore(data_dir) as store:
        assert zebra_id not in wrapped_keys(store)
        assert store.employee(ZEBRA).erasure_started_at is not None
        assert typed_text(store.read_events(**READ)) == TYPED[OKAPI]
        assert typed_text(store.read_events(**READ, employee=ZEBRA)) == ""
        assert store.device_status(DEVICES[ZEBRA][0]).recording_allowed is False
        with pytest.raises(NotPermitted, match="being erased"):
            write_typing(store, DEVICES[ZEBRA][0], "DURING-ERASURE")
        with pytest.raises(Conflict, match="being erased"):
            store.export_employee(ZEBRA, data_dir.parent / "z.zip", actor=TEST_ACTOR)
        with pytest.raises(Conflict, match="being erased"):
            store.record_consent(ZEBRA, "give", policy_version=1, method="cli", actor=TEST_ACTOR)

    rerun = cli(data_dir, "erase", "--employee", ZEBRA, "--reason", "ticket DPO-20", "--yes")
    assert rerun.returncode == 0, rerun.stderr
    assert "finished erasing" in rerun.stdout and "key already destroyed" in rerun.stdout
    everything = disk_bytes(data_dir)
    for trace in traces(ZEBRA):
        assert trace.encode() not in everything, trace
    assert zebra_key.wrapped not in everything
    with EventStore(data_dir) as store:
        with pytest.raises(NotFound):
            store.employee(ZEBRA)
        assert [e.action for e in store.audit_entries() if e.action.startswith("erasure.")] == [
            "erasure.start", "erasure.complete"]
        assert store.verify_audit_chain() is None
        assert typed_text(store.read_events(**READ)) == TYPED[OKAPI]


def test_erasure_needs_an_actor_and_a_reason(data_dir: Path) -> None:
    with EventStore(data_dir) as store:
        for actor, reason in (("", "why"), (TEST_ACTOR, " ")):
            with pytest.raises(InvalidInput):
                store.erase_employee(ZEBRA, actor=actor, reason=reason)
        assert store.employee(ZEBRA).erasure_started_at is None
        with pytest.raises(NotFound, match="already erased"):
            store.erase_employee("nobody-here", actor=TEST_ACTOR, reason="typo")


def test_the_audit_log_names_an_erased_person_only_by_their_opaque_id(data_dir: Path) -> None:
    with EventStore(data_dir) as store:
        zebra_id = store.employee(ZEBRA).employee_id
        store.read_events(**READ, employee=ZEBRA)
        store.erase_employee(ZEBRA, actor=TEST_ACTOR, reason="ticket DPO-21")
        entries = store.audit_entries()
    about = [e for e in entries if e.target == f"employee:{zebra_id}" or zebra_id in str(e.details)]
    assert {"employee.add", "device.enrol", "consent.give", "events.read", "erasure.start",
            "erasure.complete"} <= {e.action for e in about}
    text = "\n".join(repr(e) for e in entries)
    for trace in traces(ZEBRA):
        assert trace not in text, trace
