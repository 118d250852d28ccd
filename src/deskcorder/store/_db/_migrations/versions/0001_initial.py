"""Control database: devices, sessions and the batch manifest.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_batches", sa.BigInteger(), nullable=False),
        sa.Column("n_events", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_devices"),
    )
    op.create_table(
        "sessions",
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("first_t_wall_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_t_wall_ns", sa.BigInteger(), nullable=False),
        sa.Column("n_events", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.device_id"], name="fk_sessions_device_id_devices"),
        sa.PrimaryKeyConstraint("session_id", name="pk_sessions"),
    )
    op.create_index("ix_sessions_device_id", "sessions", ["device_id"])
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.String(128), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("n_events", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.device_id"], name="fk_batches_device_id_devices"),
        sa.PrimaryKeyConstraint("batch_id", name="pk_batches"),
    )
    op.create_index("ix_batches_device_id", "batches", ["device_id"])


def downgrade() -> None:
    op.drop_index("ix_batches_device_id", table_name="batches")
    op.drop_table("batches")
    op.drop_index("ix_sessions_device_id", table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("devices")
