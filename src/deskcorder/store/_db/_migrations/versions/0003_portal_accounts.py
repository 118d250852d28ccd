"""Portal accounts, logins and recording pauses.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03

New tables only, for the transparency portal (``deskcorder.collect._portal``).
An employee's account, logins and pause go with the employee row when they
are erased (ON DELETE CASCADE), so erasure needs no change.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_accounts",
        sa.Column("login", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("employee_id", sa.String(32), nullable=True),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_set_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("(role = 'admin' AND employee_id IS NULL) OR (role = 'employee' AND employee_id IS NOT NULL)",
                           name="ck_portal_accounts_role"),
        sa.ForeignKeyConstraint(["employee_id"], ["employees.employee_id"], ondelete="CASCADE",
                                name="fk_portal_accounts_employee_id_employees"),
        sa.PrimaryKeyConstraint("login", name="pk_portal_accounts"),
        sa.UniqueConstraint("employee_id", name="uq_portal_accounts_employee_id"),
    )
    op.create_table(
        "portal_logins",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("account_login", sa.String(128), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_login"], ["portal_accounts.login"], ondelete="CASCADE",
                                name="fk_portal_logins_account_login_portal_accounts"),
        sa.PrimaryKeyConstraint("token_hash", name="pk_portal_logins"),
    )
    op.create_index("ix_portal_logins_account_login", "portal_logins", ["account_login"])
    op.create_table(
        "recording_pauses",
        sa.Column("employee_id", sa.String(32), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["employee_id"], ["employees.employee_id"], ondelete="CASCADE",
                                name="fk_recording_pauses_employee_id_employees"),
        sa.PrimaryKeyConstraint("employee_id", name="pk_recording_pauses"),
    )


def downgrade() -> None:
    op.drop_table("recording_pauses")
    op.drop_index("ix_portal_logins_account_login", table_name="portal_logins")
    op.drop_table("portal_logins")
    op.drop_table("portal_accounts")
