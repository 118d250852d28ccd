"""Observations: the manifest of stored observation files, and one row per observation ever stored.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

``observation_files``: a sealed Parquet file of observations (frames, UI
elements, geometry; ``deskcorder.observations``) is part of the store only once
a row here lists it, like ``batches`` for event files. One file per upload,
UTC date and session (``store/_observations/_layout.py``); its counts and
sizes let retention, deletion and the portal work without decrypting it, and
``key_id`` names the data key it is sealed under.

``stored_observations``: one row per (session_id, action_seq) ever stored,
what makes an upload idempotent. Retention and selective deletion keep the row
with ``path`` NULL (like a batch row with no files), so an agent retrying from
its spool is answered as a duplicate instead of storing it again; erasure
deletes the rows with the device.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "observation_files",
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("n_observations", sa.BigInteger(), nullable=False),
        sa.Column("n_frames", sa.BigInteger(), nullable=False),
        sa.Column("n_elements", sa.BigInteger(), nullable=False),
        sa.Column("frame_bytes", sa.BigInteger(), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.Column("first_t_wall_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_t_wall_ns", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.device_id"], ondelete="CASCADE",
                                name="fk_observation_files_device_id_devices"),
        sa.PrimaryKeyConstraint("path", name="pk_observation_files"),
    )
    op.create_index("ix_observation_files_device_id", "observation_files", ["device_id"])
    op.create_index("ix_observation_files_session_id", "observation_files", ["session_id"])
    op.create_index("ix_observation_files_day", "observation_files", ["day"])
    op.create_table(
        "stored_observations",
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("action_seq", sa.BigInteger(), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("path", sa.String(512), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["devices.device_id"], ondelete="CASCADE",
                                name="fk_stored_observations_device_id_devices"),
        sa.PrimaryKeyConstraint("session_id", "action_seq", name="pk_stored_observations"),
    )
    op.create_index("ix_stored_observations_device_id", "stored_observations", ["device_id"])
    op.create_index("ix_stored_observations_path", "stored_observations", ["path"])


def downgrade() -> None:
    op.drop_index("ix_stored_observations_path", table_name="stored_observations")
    op.drop_index("ix_stored_observations_device_id", table_name="stored_observations")
    op.drop_table("stored_observations")
    op.drop_index("ix_observation_files_day", table_name="observation_files")
    op.drop_index("ix_observation_files_session_id", table_name="observation_files")
    op.drop_index("ix_observation_files_device_id", table_name="observation_files")
    op.drop_table("observation_files")
