"""The usage log's id indexes on PostgreSQL key a 64-bit hash of the id instead of its text.

The audit and dashboard views find a key's or an account's usage rows through ``(key_id, position)``,
``(account_id, position)`` and ``(account_id, outcome, position)``. With 27-character text ids each
entry cost ~59 bytes a row; keyed by ``reservekit_id_hash(id)`` (a bigint) ~32, ~32 and ~41
(``tests/benchmarks/usage_row_layouts.sql``; docs/benchmarks.md, sixth pass): 406 → 332 bytes a row
with the heap. Readers filter on the hash and on the id itself (``usage.records.id_matches``), so a
hash collision, however unlikely at 64 bits, only costs a row read and filtered out.

The hash is PostgreSQL's own ``hashtextextended(id, 0)``, the function hash partitioning of text relies
on (so a release cannot change it without breaking pg_upgrade of such tables), wrapped in
``reservekit_id_hash`` so that the indexes and the queries name one function. Computed in C it costs
appends nothing measurable: with the smaller indexes they got faster (105,000 → 120,000 rows/s in 10,000-row
COPY batches), where SHA-256 in SQL cost a third of their speed (68,000). SQLite keeps its text indexes:
its size is not a target and it has no such function.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ID_HASH = (
    "CREATE FUNCTION reservekit_id_hash(id text) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE "
    "AS $$ SELECT hashtextextended(id, 0) $$"
)
HASHED = {
    "ix_usage_log_key_hash_position": "reservekit_id_hash(key_id), position",
    "ix_usage_log_account_hash_position": "reservekit_id_hash(account_id), position",
    "ix_usage_log_account_hash_outcome_position": "reservekit_id_hash(account_id), outcome, position",
}
TEXT = {
    "ix_usage_log_key_position": "key_id, position",
    "ix_usage_log_account_position": "account_id, position",
    "ix_usage_log_account_outcome_position": "account_id, outcome, position",
}


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(ID_HASH)
    for name, columns in HASHED.items():
        op.execute(f"CREATE INDEX {name} ON usage_log ({columns})")
    for name in TEXT:
        op.execute(f"DROP INDEX {name}")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for name, columns in TEXT.items():
        op.execute(f"CREATE INDEX {name} ON usage_log ({columns})")
    for name in HASHED:
        op.execute(f"DROP INDEX {name}")
    op.execute("DROP FUNCTION reservekit_id_hash(text)")
