"""``member_credentials`` and ``dashboard_sessions``: the ``MemberDirectory`` port on SQL.

Why not in the log: the log is append-only and hash-chained, so a password hash written there could
never be replaced or erased, and every audit export would carry it. The log records that a member was
added, signed in, signed out or changed their password; the secrets stay here, replaceable.

Sessions: a 256-bit random token goes to the browser; only its SHA-256 is stored, so a copy of this table
opens no session. A session ends when it is idle longer than the idle timeout, older than the absolute
lifetime, signed out, or when its member changes their password.
"""

from __future__ import annotations

import hashlib
import secrets

import msgspec
from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from reservekit.clock import MINUTE_US, Clock, to_micros
from reservekit.db import read_transaction, write_transaction
from reservekit.usecases.ports import Credential

metadata = MetaData()
member_credentials = Table(
    "member_credentials",
    metadata,
    Column("member_id", String(64), primary_key=True),
    Column("account_id", String(64), nullable=False, index=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("changed_at_us", BigInteger, nullable=False),
)
dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("member_id", String(64), nullable=False, index=True),
    Column("account_id", String(64), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("last_seen_at_us", BigInteger, nullable=False),
)
dashboard_spent_forms = Table(
    "dashboard_spent_forms",
    metadata,
    Column("form_id", String(64), primary_key=True),
    Column("spent_at_us", BigInteger, nullable=False),
)

member_invitations = Table(
    "member_invitations",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("invitation_id", String(64), nullable=False, unique=True),
    Column("account_id", String(64), nullable=False, index=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("expires_at_us", BigInteger, nullable=False),
)

# A session's last-seen time is written at most once a minute: reading a page should not always write.
_TOUCH_EVERY_US = MINUTE_US


class ActiveSession(msgspec.Struct, frozen=True):
    member_id: str
    account_id: str


def new_form_id(now_us: int) -> str:
    """A one-shot form id: its issue time (hex microseconds), then 192 random bits."""
    return f"{now_us:x}.{secrets.token_urlsafe(24)}"


def form_issued_at_us(form_id: str) -> int | None:
    stamp, dot, rest = form_id.partition(".")
    if not dot or not rest or not 0 < len(stamp) <= 16:
        return None
    try:
        return int(stamp, 16)
    except ValueError:
        return None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SqlMemberDirectory:
    def __init__(self, engine: AsyncEngine, clock: Clock, *, idle_us: int, lifetime_us: int) -> None:
        self._engine = engine
        self._clock = clock
        self._idle_us = idle_us
        self._lifetime_us = lifetime_us

    def _now(self) -> int:
        return to_micros(self._clock.now())

    async def claim_email(self, email: str, credential: Credential) -> bool:
        try:
            async with write_transaction(self._engine) as conn:
                await conn.execute(
                    insert(member_credentials).values(
                        member_id=credential.member_id,
                        account_id=credential.account_id,
                        email=email,
                        password_hash=credential.password_hash,
                        changed_at_us=self._now(),
                    )
                )
        except IntegrityError:
            return False
        return True

    async def release_email(self, email: str) -> None:
        async with write_transaction(self._engine) as conn:
            await conn.execute(delete(member_credentials).where(member_credentials.c.email == email))

    async def credential(self, email: str) -> Credential | None:
        c = member_credentials.c
        async with read_transaction(self._engine) as conn:
            row = (
                await conn.execute(select(c.member_id, c.account_id, c.password_hash).where(c.email == email))
            ).first()
        return Credential(row.member_id, row.account_id, row.password_hash) if row else None

    async def set_password_hash(self, member_id: str, password_hash: str) -> None:
        c = member_credentials.c
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                update(member_credentials)
                .where(c.member_id == member_id)
                .values(password_hash=password_hash, changed_at_us=self._now())
            )

    async def open_session(self, member_id: str, account_id: str) -> str:
        token = secrets.token_urlsafe(32)
        now = self._now()
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                insert(dashboard_sessions).values(
                    token_hash=token_hash(token),
                    member_id=member_id,
                    account_id=account_id,
                    created_at_us=now,
                    last_seen_at_us=now,
                )
            )
        return token

    async def close_session(self, token: str) -> None:
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                delete(dashboard_sessions).where(dashboard_sessions.c.token_hash == token_hash(token))
            )

    async def close_all_sessions(self, member_id: str) -> None:
        async with write_transaction(self._engine) as conn:
            await conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.member_id == member_id))

    async def session(self, token: str) -> ActiveSession | None:
        """The live session for this cookie value, or None (an expired one is deleted on sight)."""
        if not token or len(token) > 128:
            return None
        c = dashboard_sessions.c
        hashed = token_hash(token)
        now = self._now()
        async with read_transaction(self._engine) as conn:
            row = (await conn.execute(select(dashboard_sessions).where(c.token_hash == hashed))).first()
        if row is None:
            return None
        expired = now - row.last_seen_at_us > self._idle_us or now - row.created_at_us > self._lifetime_us
        if expired or now - row.last_seen_at_us >= _TOUCH_EVERY_US:
            async with write_transaction(self._engine) as conn:
                if expired:
                    await conn.execute(delete(dashboard_sessions).where(c.token_hash == hashed))
                else:
                    await conn.execute(
                        update(dashboard_sessions).where(c.token_hash == hashed).values(last_seen_at_us=now)
                    )
        return None if expired else ActiveSession(row.member_id, row.account_id)

    async def save_invitation(
        self, token: str, invitation_id: str, account_id: str, expires_at_us: int
    ) -> None:
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                insert(member_invitations).values(
                    token_hash=token_hash(token),
                    invitation_id=invitation_id,
                    account_id=account_id,
                    created_at_us=self._now(),
                    expires_at_us=expires_at_us,
                )
            )

    async def invitation_for(self, token: str) -> str | None:
        if not token or len(token) > 128:
            return None
        c = member_invitations.c
        async with read_transaction(self._engine) as conn:
            found = await conn.scalar(select(c.invitation_id).where(c.token_hash == token_hash(token)))
        return str(found) if found is not None else None

    async def forget_invitation(self, invitation_id: str) -> None:
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                delete(member_invitations).where(member_invitations.c.invitation_id == invitation_id)
            )

    async def remove_member(self, member_id: str) -> None:
        async with write_transaction(self._engine) as conn:
            await conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.member_id == member_id))
            await conn.execute(delete(member_credentials).where(member_credentials.c.member_id == member_id))

    async def members_of(self, account_id: str) -> list[str]:
        c = member_credentials.c
        async with read_transaction(self._engine) as conn:
            rows = await conn.execute(
                select(c.member_id).where(c.account_id == account_id).order_by(c.changed_at_us, c.member_id)
            )
            return [row.member_id for row in rows]

    async def invitations_of(self, account_id: str) -> list[str]:
        c = member_invitations.c
        async with read_transaction(self._engine) as conn:
            rows = await conn.execute(
                select(c.invitation_id).where(c.account_id == account_id).order_by(c.created_at_us.desc())
            )
            return [row.invitation_id for row in rows]

    async def spend_form(self, form_id: str) -> bool:
        """True the first time a one-shot form (generate, rotate) is submitted; False on a replay, or for
        a form issued longer ago than a session may last: its spent row may already be purged."""
        issued = form_issued_at_us(form_id)
        if issued is None or not 0 <= self._now() - issued <= self._lifetime_us:
            return False
        try:
            async with write_transaction(self._engine) as conn:
                await conn.execute(
                    insert(dashboard_spent_forms).values(form_id=form_id, spent_at_us=self._now())
                )
        except IntegrityError:
            return False
        return True

    async def purge_expired(self) -> tuple[int, int]:
        """Delete sessions past their idle timeout or lifetime, and spent-form rows older than a session
        may last (``spend_form`` refuses those forms by their issue time); returns both counts."""
        now = self._now()
        c, f = dashboard_sessions.c, dashboard_spent_forms.c
        async with write_transaction(self._engine) as conn:
            sessions = await conn.execute(
                delete(dashboard_sessions).where(
                    (c.last_seen_at_us < now - self._idle_us) | (c.created_at_us < now - self._lifetime_us)
                )
            )
            forms = await conn.execute(
                delete(dashboard_spent_forms).where(f.spent_at_us < now - self._lifetime_us)
            )
        return int(sessions.rowcount or 0), int(forms.rowcount or 0)
