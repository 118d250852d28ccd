"""Consent records say who entered them, and a consent given on paper is recorded as such.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

``consents.recorded_by``: the actor who entered the record (the employee's own
portal login, or the OS user of an admin's ``deskcorder consent give``);
NULL on rows from before this revision, whose actor is only in the audit log.
``consents.evidence``: for method ``paper`` (a consent the person gave
elsewhere, entered by an admin), what shows it, e.g. "signed form 2026-12-01".
The method check gains ``paper``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_METHODS_BEFORE = "method IN ('cli', 'portal', 'api')"
_METHODS = "method IN ('cli', 'portal', 'api', 'paper')"
# 0002 named its check constraints through the models' naming convention once more, so the one in the
# database is "ck_consents_ck_consents_method"; the new one gets the name the models give it.
_OLD_NAME, _NEW_NAME = "ck_consents_ck_consents_method", "ck_consents_method"


def upgrade() -> None:
    # recreate="auto": SQLite cannot alter a CHECK constraint, so the table is copied (a plain ALTER on
    # PostgreSQL); the rows are kept as they are.
    with op.batch_alter_table("consents", recreate="auto") as batch:
        batch.add_column(sa.Column("recorded_by", sa.String(256), nullable=True))
        batch.add_column(sa.Column("evidence", sa.Text(), nullable=True))
        batch.drop_constraint(op.f(_OLD_NAME), type_="check")
        batch.create_check_constraint(op.f(_NEW_NAME), _METHODS)


def downgrade() -> None:
    op.execute("UPDATE consents SET method = 'cli' WHERE method = 'paper'")
    with op.batch_alter_table("consents", recreate="auto") as batch:
        batch.drop_constraint(op.f(_NEW_NAME), type_="check")
        batch.create_check_constraint(op.f(_OLD_NAME), _METHODS_BEFORE)
        batch.drop_column("evidence")
        batch.drop_column("recorded_by")
