"""Indexes for the newest usage rows of an account or a key (the dashboard's recent requests).

``read_usage`` pages by position; with only (account_id, occurred_at_us) and (key_id, occurred_at_us)
PostgreSQL walked the primary key backwards and filtered, reading the whole log when an account's
rows are few or an outcome is rare. Measured in docs/benchmarks.md (dashboard pages, 1,000,000 rows).

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_usage_log_account_position": ["account_id", "position"],
    "ix_usage_log_key_position": ["key_id", "position"],
    "ix_usage_log_account_outcome_position": ["account_id", "outcome", "position"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "usage_log", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="usage_log")
