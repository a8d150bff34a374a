"""Drop ``projection_checkpoints.usage_position``: nothing ever read or wrote it.

A projection follows exactly one log (``projecting/sources.py``), so its one ``position`` column is the
checkpoint in that log, whichever it is.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite drops a column by copying the table.
    with op.batch_alter_table("projection_checkpoints") as batch:
        batch.drop_column("usage_position")


def downgrade() -> None:
    with op.batch_alter_table("projection_checkpoints") as batch:
        batch.add_column(sa.Column("usage_position", sa.BigInteger, nullable=False, server_default="0"))
