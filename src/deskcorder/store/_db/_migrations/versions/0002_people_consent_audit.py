"""People, consent, policies, the audit log, per-employee keys, and per-file session counts.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02

Every device now belongs to an employee and every event file is encrypted with
that employee's key. Events stored by 0001 belong to nobody and are not
encrypted, so they cannot be carried over: this revision refuses to run on a
database that already holds batches (0001 was never released with data).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_GENESIS = "0" * 64


def upgrade() -> None:
    if not op.get_context().as_sql:  # offline (SQL script) mode has no database to look at
        stored = op.get_bind().execute(sa.text("SELECT count(*) FROM devices")).scalar()
        if stored:
            raise RuntimeError(
                f"this control database holds {stored} devices with events stored before per-employee "
                f"encryption (revision 0001); they cannot be attributed to anyone. Move the data dir "
                f"(and the database) aside and start a fresh one")
    op.create_table(
        "employees",
        sa.Column("employee_id", sa.String(32), nullable=False),
        sa.Column("handle", sa.String(128), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erasure_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("employee_id", name="pk_employees"),
        sa.UniqueConstraint("handle", name="uq_employees_handle"),
    )
    op.create_table(
        "employee_keys",
        sa.Column("employee_id", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("master_key_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["employee_id"], ["employees.employee_id"],
                                name="fk_employee_keys_employee_id_employees"),
        sa.PrimaryKeyConstraint("employee_id", name="pk_employee_keys"),
    )
    with op.batch_alter_table("devices", recreate="auto") as batch:
        batch.add_column(sa.Column("employee_id", sa.String(32), nullable=False))
        batch.add_column(sa.Column("hostname", sa.String(255), nullable=False))
        batch.add_column(sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False))
        batch.alter_column("first_seen", existing_type=sa.DateTime(timezone=True), nullable=True)
        batch.alter_column("last_seen", existing_type=sa.DateTime(timezone=True), nullable=True)
        batch.create_foreign_key("fk_devices_employee_id_employees", "employees", ["employee_id"], ["employee_id"])
        batch.create_index("ix_devices_employee_id", ["employee_id"])
    op.create_table(
        "file_sessions",
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.String(128), nullable=False),
        sa.Column("n_events", sa.BigInteger(), nullable=False),
        sa.Column("first_t_wall_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_t_wall_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.batch_id"], name="fk_file_sessions_batch_id_batches"),
        sa.PrimaryKeyConstraint("path", "session_id", name="pk_file_sessions"),
    )
    op.create_index("ix_file_sessions_session_id", "file_sessions", ["session_id"])
    op.create_index("ix_file_sessions_batch_id", "file_sessions", ["batch_id"])
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("employee_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("scope_text", sa.Text(), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("action IN ('give', 'withdraw')", name="ck_consents_action"),
        sa.CheckConstraint("method IN ('cli', 'portal', 'api')", name="ck_consents_method"),
        sa.ForeignKeyConstraint(["employee_id"], ["employees.employee_id"], name="fk_consents_employee_id_employees"),
        sa.PrimaryKeyConstraint("id", name="pk_consents"),
    )
    op.create_index("ix_consents_employee_id", "consents", ["employee_id"])
    op.create_table(
        "policies",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("version", name="pk_policies"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_index("ix_audit_log_target", "audit_log", ["target"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.bulk_insert(head, [{"id": 1, "last_id": 0, "last_hash": _GENESIS}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_index("ix_audit_log_target", table_name="audit_log")
    op.drop_index("ix_audit_log_action", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("policies")
    op.drop_index("ix_consents_employee_id", table_name="consents")
    op.drop_table("consents")
    op.drop_index("ix_file_sessions_batch_id", table_name="file_sessions")
    op.drop_index("ix_file_sessions_session_id", table_name="file_sessions")
    op.drop_table("file_sessions")
    with op.batch_alter_table("devices", recreate="auto") as batch:
        batch.drop_index("ix_devices_employee_id")
        batch.drop_constraint("fk_devices_employee_id_employees", type_="foreignkey")
        batch.drop_column("registered_at")
        batch.drop_column("hostname")
        batch.drop_column("employee_id")
        batch.alter_column("first_seen", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.alter_column("last_seen", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.drop_table("employee_keys")
    op.drop_table("employees")
