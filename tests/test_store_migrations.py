"""The Alembic migrations build exactly the tables the models describe, on SQLite and (as SQL) on PostgreSQL."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from deskcorder.store import EventStore, StoreError
from deskcorder.store._db._migrate import alembic_config
from deskcorder.store._db._tables import metadata

from .helpers import READ, enrol

# The backend fixture: SQLite, and PostgreSQL when a driver and a server are there.
from .test_store_event_store import database_url  # noqa: F401


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_store_open_migrates_a_fresh_database_to_head(tmp_path: Path) -> None:
    EventStore(tmp_path / "data").close()
    with sqlite3.connect(tmp_path / "data" / "control.db") as db:
        assert db.execute("select version_num from alembic_version").fetchall() == [(head_revision(),)]
        assert db.execute("pragma journal_mode").fetchone() == ("wal",)
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
    assert tables == {"alembic_version", "devices", "sessions", "batches", "file_sessions", "employees",
                      "employee_keys", "consents", "policies", "audit_log", "audit_head", "portal_accounts",
                      "portal_logins", "recording_pauses", "device_credentials", "enrolment_tokens",
                      "store_settings", "device_rate_limits", "login_failures",
                      "observation_files", "stored_observations", "activity_counts", "activity_parts"}


def test_migrated_schema_matches_the_models(tmp_path: Path, database_url: str | None) -> None:  # noqa: F811
    EventStore(tmp_path / "data", database_url=database_url).close()
    engine = create_engine(database_url or f"sqlite:///{tmp_path / 'data' / 'control.db'}")
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
            indexes = {ix["name"] for t in metadata.tables for ix in inspect(conn).get_indexes(t)
                       if not ix.get("duplicates_constraint")}  # PostgreSQL lists unique constraints too
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ; write a new revision for: {diff}"
    assert indexes == {"ix_sessions_device_id", "ix_batches_device_id", "ix_devices_employee_id",
                       "ix_file_sessions_session_id", "ix_file_sessions_batch_id", "ix_consents_employee_id",
                       "ix_audit_log_action", "ix_audit_log_target", "ix_portal_logins_account_login",
                       "ix_device_credentials_employee_id", "ix_enrolment_tokens_employee_id",
                       "ix_login_failures_last_failure_at",
                       "ix_observation_files_device_id", "ix_observation_files_session_id", "ix_observation_files_day",
                       "ix_stored_observations_device_id", "ix_stored_observations_path",
                       "ix_activity_counts_session_id", "ix_activity_counts_hour", "ix_activity_parts_session_id",
                       "ix_activity_parts_day"}


def test_reopening_a_migrated_store_keeps_its_data(tmp_path: Path) -> None:
    from .test_store_event_store import MIDNIGHT, make_batch, make_events

    with EventStore(tmp_path / "data") as store:
        enrol(store, "alice", "device-0001")
        store.write_batch(make_batch("batch-0001", make_events("sess-a", 0, 10, MIDNIGHT)))
    with EventStore(tmp_path / "data") as store:  # upgrade at head is a no-op
        assert store.read_events(**READ).num_rows == 10


def test_migrations_render_for_postgresql_and_downgrade(tmp_path: Path) -> None:
    out = io.StringIO()
    cfg = alembic_config("postgresql://user@localhost/deskcorder")
    cfg.output_buffer = out
    command.upgrade(cfg, "head", sql=True)  # offline: SQL text, no server or driver needed
    sql = out.getvalue()
    assert "CREATE TABLE batches" in sql and "files JSON NOT NULL" in sql
    assert "received_at TIMESTAMP WITH TIME ZONE NOT NULL" in sql
    assert "CONSTRAINT fk_batches_device_id_devices FOREIGN KEY(device_id) REFERENCES devices (device_id)" in sql
    assert "ALTER TABLE devices ADD COLUMN employee_id VARCHAR(32) NOT NULL" in sql
    assert "CREATE TABLE audit_log" in sql and "INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, 0, " in sql

    url = f"sqlite:///{tmp_path / 'control.db'}"
    command.upgrade(alembic_config(url), "head")
    command.downgrade(alembic_config(url), "base")
    engine = create_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()


def test_events_stored_before_per_employee_encryption_stop_the_upgrade_with_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'control.db'}"
    (tmp_path / "data").mkdir()
    command.upgrade(alembic_config(url), "0001")
    with sqlite3.connect(tmp_path / "data" / "control.db") as db:
        db.execute("insert into devices values ('device-0001', '2024-01-01', '2024-01-01', 1, 10)")
    with pytest.raises(StoreError, match="1 devices with events stored before per-employee encryption"):
        EventStore(tmp_path / "data").close()
    with sqlite3.connect(tmp_path / "data" / "control.db") as db:
        assert db.execute("select version_num from alembic_version").fetchall() == [("0001",)]


def test_every_migration_file_is_in_the_package_data() -> None:
    # An installed (not editable) deskcorder has only what pyproject's package-data lists: a migration
    # left out would make every store opened by it stop at an unknown revision.
    import fnmatch
    import tomllib

    import deskcorder
    from deskcorder.store._db._migrate import MIGRATIONS_DIR

    package = Path(deskcorder.__file__).parent
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    globs = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]["deskcorder"]
    shipped = [f for f in MIGRATIONS_DIR.rglob("*") if f.is_file() and "__pycache__" not in f.parts]
    assert any(f.name == "env.py" for f in shipped)
    missing = [str(f.relative_to(package)) for f in shipped
               if not any(fnmatch.fnmatch(str(f.relative_to(package)), g) for g in globs)]
    assert missing == []
