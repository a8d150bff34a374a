"""Webhooks: encrypted signing secrets, delivery state, attempts, endpoint health, fan-out progress.

These are not projections: they record what was sent and the secrets needed to sign, which cannot be
derived from the logs (the log never holds a plaintext secret). The outbox itself is a projection.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_AUTO_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "webhook_secrets",
        sa.Column("endpoint_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("ciphertext", sa.Text, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("seq", _AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(64), nullable=False, unique=True),
        sa.Column("endpoint_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at_us", sa.BigInteger, nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until_us", sa.BigInteger),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.String(255)),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("finished_at_us", sa.BigInteger),
        sa.UniqueConstraint("endpoint_id", "message_id", name="uq_webhook_deliveries_endpoint_message"),
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_status", "webhook_deliveries", ["endpoint_id", "status", "seq"]
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("endpoint_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("started_at_us", sa.BigInteger, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("error", sa.String(255)),
    )
    op.create_index("ix_webhook_attempts_delivery_id", "webhook_attempts", ["delivery_id"])
    op.create_table(
        "webhook_endpoint_health",
        sa.Column("endpoint_id", sa.String(64), primary_key=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("failing_since_us", sa.BigInteger),
        sa.Column("last_success_us", sa.BigInteger),
        sa.Column("last_failure_us", sa.BigInteger),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "webhook_seen_flags",
        sa.Column("flag_id", sa.String(64), primary_key=True),
        sa.Column("seen_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "webhook_dispatch_cursors",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "webhook_dispatch_cursors",
        "webhook_seen_flags",
        "webhook_endpoint_health",
        "webhook_attempts",
        "webhook_deliveries",
        "webhook_secrets",
    ):
        op.drop_table(table)
