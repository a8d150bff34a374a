"""An index for the newest usage rows of an account with one outcome (the dashboard's recent requests).

``read_usage`` pages by position; 0009 gave it (account_id, position) and (key_id, position). Filtered by a
rare outcome, PostgreSQL still walked the account's rows backwards and filtered, reading the whole log.
Measured in docs/benchmarks.md (dashboard pages, 1,000,000 rows).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INDEXES = {"ix_usage_log_account_outcome_position": ["account_id", "outcome", "position"]}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "usage_log", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="usage_log")
