"""The usage log at scale: compact types, only the indexes the views read, day partitions, retention.

- ``status`` is a smallint and ``latency_us`` an integer (35 minutes of latency fit).
- Indexes: ``(key_id, position)`` and ``(account_id, position)`` — the audit view filters on one of them
  and pages by position, so PostgreSQL walks one index in order instead of ANDing two bitmaps and
  sorting (97 ms → under a millisecond at 1M rows). The ``(…, occurred_at_us)`` indexes go (the usage
  views read the per-minute rollups); ``recorded_at_us`` keeps a BRIN index on PostgreSQL (rows arrive
  in time order, so a few pages cover millions of rows) for spool replay.
- PostgreSQL: ``usage_log`` is range-partitioned by day on ``recorded_at_us``; the background loop
  creates the partitions ahead (``usage/retention.py``), and rows older than the retention boundary
  leave by dropping whole partitions. A DEFAULT partition holds rows the migration moved from 0003's
  table and anything a missing partition would otherwise refuse. The primary key is
  ``(position, recorded_at_us)`` (a partitioned table's keys must name its partition column); positions
  stay unique and gapless because appends hold the usage advisory lock.
- Append-only still: UPDATE, TRUNCATE and DELETE are refused, except DELETE of a row recorded before the
  latest boundary in ``usage_retention`` (itself append-only), which is how retention removes rows on
  SQLite and from the default partition.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_COLUMNS = (
    "position, recorded_at_us, occurred_at_us, request_id, key_id, account_id, client_ip, origin, "
    "method, route, status, outcome, detail, latency_us"
)


def upgrade() -> None:
    op.create_table(
        "usage_retention",
        sa.Column("boundary_us", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("through_position", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("retention_days", sa.Integer, nullable=False),
        sa.Column("applied_at_us", sa.BigInteger, nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_upgrade()
    else:
        _postgres_upgrade()


def _sqlite_upgrade() -> None:
    op.drop_index("ix_usage_log_key_occurred", table_name="usage_log")
    op.drop_index("ix_usage_log_account_occurred", table_name="usage_log")
    op.create_index("ix_usage_log_key_position", "usage_log", ["key_id", "position"])
    op.create_index("ix_usage_log_account_position", "usage_log", ["account_id", "position"])
    op.execute("DROP TRIGGER usage_log_no_delete")
    op.execute(
        "CREATE TRIGGER usage_log_no_delete BEFORE DELETE ON usage_log "
        "WHEN OLD.recorded_at_us >= (SELECT coalesce(max(boundary_us), -1) FROM usage_retention) "
        "BEGIN SELECT RAISE(ABORT, 'usage_log is append-only: DELETE refused'); END"
    )
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER usage_retention_no_{action.lower()} BEFORE {action} ON usage_retention "
            f"BEGIN SELECT RAISE(ABORT, 'usage_retention is append-only: {action} refused'); END"
        )


def _postgres_upgrade() -> None:
    op.execute(
        "CREATE FUNCTION reservekit_usage_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN "
        "IF TG_OP = 'DELETE' AND OLD.recorded_at_us < "
        "(SELECT coalesce(max(boundary_us), -1) FROM usage_retention) THEN RETURN OLD; END IF; "
        "RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP; END $$"
    )
    op.execute("ALTER TABLE usage_log RENAME TO usage_log_0003")
    op.execute(
        "CREATE TABLE usage_log ("
        "position bigint NOT NULL, recorded_at_us bigint NOT NULL, occurred_at_us bigint NOT NULL, "
        "request_id varchar(64) NOT NULL, key_id varchar(64), account_id varchar(64), "
        "client_ip varchar(64) NOT NULL, origin varchar(255), method varchar(16) NOT NULL, "
        "route varchar(255) NOT NULL, status smallint NOT NULL, outcome varchar(32) NOT NULL, "
        "detail varchar(64), latency_us integer NOT NULL, "
        "CONSTRAINT pk_usage_log PRIMARY KEY (position, recorded_at_us)"
        ") PARTITION BY RANGE (recorded_at_us)"
    )
    op.execute("CREATE TABLE usage_log_default PARTITION OF usage_log DEFAULT")
    op.execute(
        f"INSERT INTO usage_log ({_COLUMNS}) SELECT {_COLUMNS} FROM usage_log_0003"  # noqa: S608
    )
    op.execute("DROP TABLE usage_log_0003")
    op.execute("CREATE INDEX ix_usage_log_key_position ON usage_log (key_id, position)")
    op.execute("CREATE INDEX ix_usage_log_account_position ON usage_log (account_id, position)")
    op.execute("CREATE INDEX ix_usage_log_recorded ON usage_log USING brin (recorded_at_us)")
    op.execute(
        "CREATE TRIGGER usage_log_append_only BEFORE UPDATE OR DELETE ON usage_log "
        "FOR EACH ROW EXECUTE FUNCTION reservekit_usage_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER usage_log_no_truncate BEFORE TRUNCATE ON usage_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION reservekit_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER usage_retention_append_only BEFORE UPDATE OR DELETE ON usage_retention "
        "FOR EACH ROW EXECUTE FUNCTION reservekit_refuse_change()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER usage_retention_no_{action}")
        op.execute("DROP TRIGGER usage_log_no_delete")
        op.execute(
            "CREATE TRIGGER usage_log_no_delete BEFORE DELETE ON usage_log "
            "BEGIN SELECT RAISE(ABORT, 'usage_log is append-only: DELETE refused'); END"
        )
        op.drop_index("ix_usage_log_key_position", table_name="usage_log")
        op.drop_index("ix_usage_log_account_position", table_name="usage_log")
        op.create_index("ix_usage_log_key_occurred", "usage_log", ["key_id", "occurred_at_us"])
        op.create_index("ix_usage_log_account_occurred", "usage_log", ["account_id", "occurred_at_us"])
    else:
        # Back to one plain table holding every kept row (0003's shape, 0004's columns).
        op.execute("ALTER TABLE usage_log RENAME TO usage_log_0009")
        op.execute("CREATE TABLE usage_log (LIKE usage_log_0009 INCLUDING DEFAULTS)")
        op.execute("ALTER TABLE usage_log ALTER COLUMN status TYPE integer")
        op.execute("ALTER TABLE usage_log ALTER COLUMN latency_us TYPE bigint")
        op.execute("ALTER TABLE usage_log ADD PRIMARY KEY (position)")
        op.execute(f"INSERT INTO usage_log ({_COLUMNS}) SELECT {_COLUMNS} FROM usage_log_0009")  # noqa: S608
        op.execute("DROP TABLE usage_log_0009")
        op.execute("DROP FUNCTION reservekit_usage_refuse_change()")
        op.create_index("ix_usage_log_key_occurred", "usage_log", ["key_id", "occurred_at_us"])
        op.create_index("ix_usage_log_account_occurred", "usage_log", ["account_id", "occurred_at_us"])
        op.create_index("ix_usage_log_recorded", "usage_log", ["recorded_at_us"])
        for trigger, timing in (("append_only", "UPDATE OR DELETE"), ("no_truncate", "TRUNCATE")):
            each = "STATEMENT" if timing == "TRUNCATE" else "ROW"
            op.execute(
                f"CREATE TRIGGER usage_log_{trigger} BEFORE {timing} ON usage_log "
                f"FOR EACH {each} EXECUTE FUNCTION reservekit_refuse_change()"
            )
    op.drop_table("usage_retention")
