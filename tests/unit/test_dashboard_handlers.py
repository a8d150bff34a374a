"""The dashboard's command handlers on the in-memory store: key edits, sign-up, sign-in, passwords."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from argon2 import PasswordHasher

from reservekit.clock import FakeClock
from reservekit.domain.errors import Conflict, InvalidInput, NotFound
from reservekit.domain.events import Metadata
from reservekit.domain.members import SignInRefused, TooManyAttempts
from reservekit.events.memory import InMemoryEventStore
from reservekit.keys.tokens import KeyHasher
from reservekit.members.passwords import Argon2Passwords
from reservekit.usecases.application import Application
from reservekit.usecases.commands import (
    ChangePassword,
    CreateKey,
    OpenAccount,
    RotateKey,
    SignIn,
    SignOut,
    SignUp,
    UpdateKey,
)
from reservekit.usecases.dependencies import HandlerDependencies
from reservekit.usecases.ports import Credential

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
META = Metadata(client_ip="198.51.100.7", user_agent="unit", source="dashboard")
PASSWORD = "correct horse battery staple"


class MemoryDirectory:
    def __init__(self) -> None:
        self.by_email: dict[str, Credential] = {}
        self.sessions: dict[str, str] = {}

    async def claim_email(self, email: str, credential: Credential) -> bool:
        if email in self.by_email:
            return False
        self.by_email[email] = credential
        return True

    async def release_email(self, email: str) -> None:
        self.by_email.pop(email, None)

    async def credential(self, email: str) -> Credential | None:
        return self.by_email.get(email)

    async def set_password_hash(self, member_id: str, password_hash: str) -> None:
        for email, cred in list(self.by_email.items()):
            if cred.member_id == member_id:
                self.by_email[email] = Credential(cred.member_id, cred.account_id, password_hash)

    async def open_session(self, member_id: str, account_id: str) -> str:
        token = f"tok{len(self.sessions)}"
        self.sessions[token] = member_id
        return token

    async def close_session(self, token: str) -> None:
        self.sessions.pop(token, None)

    async def close_all_sessions(self, member_id: str) -> None:
        self.sessions = {t: m for t, m in self.sessions.items() if m != member_id}


class World:
    def __init__(self, allowed: int = 100) -> None:
        self.clock = FakeClock(NOW)
        self.store = InMemoryEventStore(self.clock)
        self.directory = MemoryDirectory()
        self.attempts: dict[str, int] = {}
        self.allowed = allowed
        # Cheap Argon2 parameters: the unit tests check behaviour, not cost.
        passwords = Argon2Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        self.app = Application(
            HandlerDependencies(
                store=self.store,
                hasher=KeyHasher(b"p" * 32),
                clock=self.clock,
                plans={"free": 60},
                members=self.directory,
                passwords=passwords,
                sign_in_gate=self.gate,
            )
        )

    async def gate(self, bucket: str) -> bool:
        self.attempts[bucket] = self.attempts.get(bucket, 0) + 1
        return self.attempts[bucket] <= self.allowed


async def test_update_key_replaces_settings_and_an_unchanged_edit_writes_nothing() -> None:
    world = World()
    opened = await world.app.execute(OpenAccount(name="Acme"), META)
    key = opened.first_key.key
    expires = NOW + timedelta(days=30)
    command = UpdateKey(
        account_id=key.account_id,
        key_id=key.key_id,
        name=" web ",
        domains=["Shop.Example.com"],
        scopes=["services:read"],
        expires_at=expires,
    )
    updated = await world.app.execute(command, META)
    assert (updated.name, updated.domains, updated.scopes, updated.expires_at) == (
        "web",
        ("shop.example.com",),
        ("services:read",),
        expires,
    )
    head = await world.store.head()
    again = await world.app.execute(command, META)
    assert again == updated
    assert await world.store.head() == head


async def test_update_key_validates_like_create_and_refuses_rotated_or_foreign_keys() -> None:
    world = World()
    acme = await world.app.execute(OpenAccount(name="Acme"), META)
    globex = await world.app.execute(OpenAccount(name="Globex"), META)
    key = acme.first_key.key
    head = await world.store.head()
    with pytest.raises(InvalidInput) as bad_domain:
        await world.app.execute(
            UpdateKey(account_id=key.account_id, key_id=key.key_id, domains=["a b"]), META
        )
    assert bad_domain.value.field == "domains"
    with pytest.raises(InvalidInput) as no_scopes:
        await world.app.execute(UpdateKey(account_id=key.account_id, key_id=key.key_id, scopes=[]), META)
    assert no_scopes.value.field == "scopes"
    with pytest.raises(NotFound):
        await world.app.execute(
            UpdateKey(account_id=globex.account.account_id, key_id=key.key_id, name="mine"), META
        )
    assert await world.store.head() == head
    await world.app.execute(RotateKey(account_id=key.account_id, key_id=key.key_id), META)
    with pytest.raises(Conflict):
        await world.app.execute(UpdateKey(account_id=key.account_id, key_id=key.key_id, name="late"), META)


async def test_sign_up_and_sign_in_record_events_without_password_material() -> None:
    world = World()
    signed_up = await world.app.execute(SignUp(email=" Ada@Example.com ", password=PASSWORD), META)
    assert signed_up.member.email == "ada@example.com"
    assert signed_up.account.plan == "free"
    signed_in = await world.app.execute(SignIn(email="ada@example.com", password=PASSWORD), META)
    assert signed_in.session_token in world.directory.sessions
    log = await world.store.read_after(0)
    assert [e.type for e in log] == ["account_opened", "member_added", "member_signed_in"]
    assert all(e.metadata.actor_member_id == signed_up.member.member_id for e in log)
    assert all(e.metadata.source == "dashboard" for e in log)
    raw = msgspec.json.encode([(e.data, e.metadata) for e in log]).decode()
    assert PASSWORD not in raw
    assert "$argon2" not in raw
    assert world.directory.by_email["ada@example.com"].password_hash.startswith("$argon2id$")
    assert repr(SignUp(email=" Ada@Example.com ", password=PASSWORD)) == "SignUp(email=' Ada@Example.com ')"


async def test_sign_in_refuses_unknown_email_and_wrong_password_alike_and_counts_attempts() -> None:
    world = World(allowed=3)  # per bucket: the sign-up and two sign-ins from this IP
    await world.app.execute(SignUp(email="ada@example.com", password=PASSWORD), META)
    refusals = []
    for email, password in [("nobody@example.com", PASSWORD), ("ada@example.com", "wrong password!!")]:
        with pytest.raises(SignInRefused) as refused:
            await world.app.execute(SignIn(email=email, password=password), META)
        refusals.append(refused.value.message)
    assert refusals[0] == refusals[1]
    assert world.attempts["ip:198.51.100.7"] == 3
    with pytest.raises(TooManyAttempts):
        await world.app.execute(SignIn(email="ada@example.com", password=PASSWORD), META)
    assert [e.type for e in await world.store.read_after(0)][-1] == "member_added"


async def test_sign_up_refuses_a_short_password_a_bad_email_and_a_taken_email() -> None:
    world = World()
    with pytest.raises(InvalidInput) as short:
        await world.app.execute(SignUp(email="ada@example.com", password="elevenchars"), META)
    assert short.value.field == "password"
    with pytest.raises(InvalidInput) as bad:
        await world.app.execute(SignUp(email="ada", password=PASSWORD), META)
    assert bad.value.field == "email"
    await world.app.execute(SignUp(email="ada@example.com", password=PASSWORD), META)
    with pytest.raises(Conflict):
        await world.app.execute(SignUp(email="ADA@example.com", password=PASSWORD), META)
    assert [e.type for e in await world.store.read_after(0)] == ["account_opened", "member_added"]


async def test_password_change_ends_every_session_and_sign_out_ends_one() -> None:
    world = World()
    up = await world.app.execute(SignUp(email="ada@example.com", password=PASSWORD), META)
    member = up.member
    first = (await world.app.execute(SignIn(email=member.email, password=PASSWORD), META)).session_token
    second = (await world.app.execute(SignIn(email=member.email, password=PASSWORD), META)).session_token
    await world.app.execute(
        SignOut(member_id=member.member_id, account_id=member.account_id, session_token=first), META
    )
    assert set(world.directory.sessions) == {second}
    with pytest.raises(SignInRefused):
        await world.app.execute(
            ChangePassword(
                member_id=member.member_id,
                email=member.email,
                current_password="nope",
                new_password="another long passphrase",
            ),
            META,
        )
    fresh = await world.app.execute(
        ChangePassword(
            member_id=member.member_id,
            email=member.email,
            current_password=PASSWORD,
            new_password="another long passphrase",
        ),
        META,
    )
    assert set(world.directory.sessions) == {fresh}
    with pytest.raises(SignInRefused):
        await world.app.execute(SignIn(email=member.email, password=PASSWORD), META)
    types = [e.type for e in await world.store.read_after(0)]
    assert types[-2:] == ["member_signed_out", "member_password_changed"]


async def test_create_key_from_the_dashboard_has_no_grant_ceiling() -> None:
    world = World()
    up = await world.app.execute(SignUp(email="ada@example.com", password=PASSWORD), META)
    issued = await world.app.execute(CreateKey(account_id=up.account.account_id), META)
    assert "keys:write" in issued.key.scopes


async def test_sign_ups_count_against_the_ip_bucket() -> None:
    world = World(allowed=1)
    await world.app.execute(SignUp(email="ada@example.com", password=PASSWORD), META)
    with pytest.raises(TooManyAttempts):
        await world.app.execute(SignUp(email="bob@example.com", password=PASSWORD), META)
    assert [e.type for e in await world.store.read_after(0)] == ["account_opened", "member_added"]
