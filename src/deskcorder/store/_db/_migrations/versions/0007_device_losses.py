"""Devices count the events their agent lost, by reason.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

``devices.lost_queue_full``, ``lost_spool_unavailable``, ``lost_callback_error``:
events the device's agent lost (deskcorder.events.LOSS_REASONS), added up from
the GAP events of the batches stored, in the transaction that registers each
batch. 0 on devices from before this revision: their agents wrote no GAP events.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Named here, not imported: a migration says what it did then, whatever the code says later.
_COLUMNS = ("lost_queue_full", "lost_spool_unavailable", "lost_callback_error")


def upgrade() -> None:
    # A plain ALTER on both SQLite and PostgreSQL: a NOT NULL column with a default fills every row.
    with op.batch_alter_table("devices") as batch:
        for name in _COLUMNS:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
