"""Team invitations: the hash of each invitation link's token, beside the log.

The log records ``member_invited`` (email, role, expiry) but never the token; a row here maps the
SHA-256 of the link's token to its invitation and is deleted when the invitation is used or withdrawn.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_invitations",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("invitation_id", sa.String(64), nullable=False, unique=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_member_invitations_account_id", "member_invitations", ["account_id"])
    op.create_index("ix_member_credentials_account_id", "member_credentials", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_member_credentials_account_id", table_name="member_credentials")
    op.drop_table("member_invitations")
