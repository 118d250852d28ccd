"""Store settings (where the event files live), the fleet collectors' shared rate limits, login throttling.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

New tables only. ``store_settings`` records ``events_url`` when the event
files are not under ``<data_dir>/events`` (object storage); ``device_rate_limits``
holds one token bucket per device, shared by every fleet collector;
``login_failures`` counts failed portal logins per login name.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_settings",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_store_settings"),
    )
    op.create_table(
        "device_rate_limits",
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.device_id"], ondelete="CASCADE",
                                name="fk_device_rate_limits_device_id_devices"),
        sa.PrimaryKeyConstraint("device_id", name="pk_device_rate_limits"),
    )
    op.create_table(
        "login_failures",
        sa.Column("login_hash", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("login_hash", name="pk_login_failures"),
    )
    op.create_index("ix_login_failures_last_failure_at", "login_failures", ["last_failure_at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_last_failure_at", table_name="login_failures")
    op.drop_table("login_failures")
    op.drop_table("device_rate_limits")
    op.drop_table("store_settings")
