"""The dashboard's members and sessions: password hashes and session hashes, beside the log.

Plain rows, not events: a password hash must be replaceable and erasable, which an append-only,
hash-chained log can never allow. The log records the member events themselves (``member_added``, …).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_credentials",
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("changed_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "dashboard_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("last_seen_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_dashboard_sessions_member_id", "dashboard_sessions", ["member_id"])
    op.create_table(
        "dashboard_spent_forms",
        sa.Column("form_id", sa.String(64), primary_key=True),
        sa.Column("spent_at_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dashboard_spent_forms")
    op.drop_table("dashboard_sessions")
    op.drop_table("member_credentials")
