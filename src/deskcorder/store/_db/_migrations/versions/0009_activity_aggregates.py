"""Activity aggregates: events counted per batch, session, UTC hour, application and kind.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

``activity_counts`` and ``activity_parts`` (see ``store/_db/_aggregates.py``)
are what the admin's activity page reads instead of decrypting every event.
New batches are counted as they are stored. The batches already stored cannot
be counted here: their events are encrypted and a migration has no key. So
this revision records ``store_settings.activity_aggregates = pending``, and the
first ``EventStore`` that opens the upgraded store counts them, one batch per
transaction (``backfill_activity``), then sets it to ``done``.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "activity_counts",
        sa.Column("batch_id", sa.String(128), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("app", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("lead", sa.Boolean(), nullable=False),
        sa.Column("n_events", sa.BigInteger(), nullable=False),
        sa.Column("employee_id", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.batch_id"], ondelete="CASCADE",
                                name="fk_activity_counts_batch_id_batches"),
        sa.PrimaryKeyConstraint("batch_id", "session_id", "hour", "app", "kind", "lead", name="pk_activity_counts"),
    )
    op.create_index("ix_activity_counts_session_id", "activity_counts", ["session_id"])
    op.create_index("ix_activity_counts_hour", "activity_counts", ["hour"])
    op.create_table(
        "activity_parts",
        sa.Column("batch_id", sa.String(128), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("lead_app", sa.String(256), nullable=False),
        sa.Column("last_focus_app", sa.String(256), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.batch_id"], ondelete="CASCADE",
                                name="fk_activity_parts_batch_id_batches"),
        sa.PrimaryKeyConstraint("batch_id", "session_id", "day", name="pk_activity_parts"),
    )
    op.create_index("ix_activity_parts_session_id", "activity_parts", ["session_id"])
    op.create_index("ix_activity_parts_day", "activity_parts", ["day"])
    # Named here, not imported: a migration says what it did then, whatever the code says later.
    settings = sa.table("store_settings", sa.column("name", sa.String), sa.column("value", sa.Text),
                        sa.column("set_at", sa.DateTime(timezone=True)))
    op.bulk_insert(settings, [{"name": "activity_aggregates", "value": "pending",
                               "set_at": dt.datetime.now(dt.timezone.utc)}])


def downgrade() -> None:
    op.execute("DELETE FROM store_settings WHERE name = 'activity_aggregates'")
    op.drop_index("ix_activity_parts_day", table_name="activity_parts")
    op.drop_index("ix_activity_parts_session_id", table_name="activity_parts")
    op.drop_table("activity_parts")
    op.drop_index("ix_activity_counts_hour", table_name="activity_counts")
    op.drop_index("ix_activity_counts_session_id", table_name="activity_counts")
    op.drop_table("activity_counts")
