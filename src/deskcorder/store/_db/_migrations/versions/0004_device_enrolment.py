"""Device enrolment: one-time enrolment tokens and per-device credentials.

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04

New tables only (``deskcorder.store._people._enrolment``). Devices registered before
this revision have no credential: their agents must be enrolled with a token
(``deskcorder device token --employee HANDLE``) before the collector accepts
their batches again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_credentials",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("employee_id", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["devices.device_id"], ondelete="CASCADE",
                                name="fk_device_credentials_device_id_devices"),
        sa.ForeignKeyConstraint(["employee_id"], ["employees.employee_id"], ondelete="CASCADE",
                                name="fk_device_credentials_employee_id_employees"),
        sa.PrimaryKeyConstraint("device_id", name="pk_device_credentials"),
    )
    op.create_index("ix_device_credentials_employee_id", "device_credentials", ["employee_id"])
    op.create_table(
        "enrolment_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("employee_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_by_device", sa.String(128), nullable=True),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.ForeignKeyConstraint(["employee_id"], ["employees.employee_id"], ondelete="CASCADE",
                                name="fk_enrolment_tokens_employee_id_employees"),
        sa.PrimaryKeyConstraint("token_hash", name="pk_enrolment_tokens"),
    )
    op.create_index("ix_enrolment_tokens_employee_id", "enrolment_tokens", ["employee_id"])


def downgrade() -> None:
    op.drop_index("ix_enrolment_tokens_employee_id", table_name="enrolment_tokens")
    op.drop_table("enrolment_tokens")
    op.drop_index("ix_device_credentials_employee_id", table_name="device_credentials")
    op.drop_table("device_credentials")
