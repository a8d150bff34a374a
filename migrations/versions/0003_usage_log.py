"""The usage log: one append-only row per request, refused ones included.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
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
        "usage_log",
        sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("recorded_at_us", sa.BigInteger, nullable=False),
        sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64)),
        sa.Column("account_id", sa.String(64)),
        sa.Column("client_ip", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(255)),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("route", sa.String(255), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.String(64)),
        sa.Column("latency_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_usage_log_key_occurred", "usage_log", ["key_id", "occurred_at_us"])
    op.create_index("ix_usage_log_account_occurred", "usage_log", ["account_id", "occurred_at_us"])
    op.create_index("ix_usage_log_recorded", "usage_log", ["recorded_at_us"])
    _append_only("usage_log")


def _append_only(table: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END"
            )
        return
    op.execute(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION reservekit_refuse_change()"
    )
    op.execute(
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION reservekit_refuse_change()"
    )


def downgrade() -> None:
    op.drop_table("usage_log")
