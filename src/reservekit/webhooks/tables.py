"""Tables the dispatcher owns (created by Alembic ``0004``): mutable delivery state, never rebuilt.

The outbox itself is a projection (``projections/webhook_outbox.py``): what *should* be sent is derived
from the logs and can be rebuilt. What *was* sent cannot, so it lives here, outside any projection,
and a rebuild or a projection version change never re-sends a delivered message.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

webhook_secrets = Table(
    "webhook_secrets",
    metadata,
    Column("endpoint_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("account_id", String(64), nullable=False),
    # base64(nonce ‖ AES-GCM ciphertext) of the whsec_… text; see webhooks/secrets.py.
    Column("ciphertext", Text, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    # Materialisation order: deliveries to one endpoint go out in ascending ``seq``.
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("delivery_id", String(64), nullable=False, unique=True),  # the webhook-id header
    Column("endpoint_id", String(64), nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("message_id", String(128), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | succeeded | failed | cancelled
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at_us", BigInteger, nullable=False),
    Column("expires_at_us", BigInteger, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_until_us", BigInteger),
    Column("last_status_code", Integer),
    Column("last_error", String(255)),
    Column("created_at_us", BigInteger, nullable=False),
    Column("finished_at_us", BigInteger),
    UniqueConstraint("endpoint_id", "message_id", name="uq_webhook_deliveries_endpoint_message"),
    Index("ix_webhook_deliveries_endpoint_status", "endpoint_id", "status", "seq"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("delivery_id", String(64), nullable=False, index=True),
    Column("endpoint_id", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started_at_us", BigInteger, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("status_code", Integer),
    Column("outcome", String(32), nullable=False),  # succeeded | http_error | timeout | network | refused
    Column("error", String(255)),
)

webhook_endpoint_health = Table(
    "webhook_endpoint_health",
    metadata,
    Column("endpoint_id", String(64), primary_key=True),
    Column("consecutive_failures", Integer, nullable=False),
    Column("failing_since_us", BigInteger),
    Column("last_success_us", BigInteger),
    Column("last_failure_us", BigInteger),
    Column("disabled", Boolean, nullable=False, server_default=false()),
)

webhook_dispatch_cursors = Table(
    "webhook_dispatch_cursors",
    metadata,
    # Per outbox source: the last outbox position turned into deliveries (exactly once).
    Column("name", String(32), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

webhook_seen_flags = Table(
    "webhook_seen_flags",
    metadata,
    # Usage flags already fanned out (or taken as the baseline); see webhooks/fanout.py.
    Column("flag_id", String(64), primary_key=True),
    Column("seen_at_us", BigInteger, nullable=False),
)
