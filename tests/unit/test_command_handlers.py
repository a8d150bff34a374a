"""The command handlers behind ``Application.execute``, on the in-memory event store: no database.

Each test drives the application service the way the API and the CLI do, then reads the log back.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reservekit.clock import FakeClock
from reservekit.domain.errors import ConcurrentChange, Conflict, InvalidInput, NotFound, NotPermitted
from reservekit.domain.events import KeyCreated, LeakReported, Metadata
from reservekit.events.memory import InMemoryEventStore
from reservekit.keys.tokens import KeyHasher, generate_secret
from reservekit.usecases.application import HANDLERS, Application
from reservekit.usecases.commands import (
    AcceptInvitation,
    AddMember,
    ChangeMemberRole,
    ChangePassword,
    ChangePlan,
    Command,
    CreateKey,
    InviteMember,
    OpenAccount,
    OpenedAccount,
    RemoveMember,
    ReportLeak,
    ResolveFlag,
    RevokeInvitation,
    RevokeKey,
    RotateKey,
    SignIn,
    SignOut,
    SignUp,
    UpdateKey,
)
from reservekit.usecases.dependencies import HandlerDependencies
from reservekit.usecases.ports import ConcurrencyConflict, FlagOwner

META = Metadata(actor_account_id="acct_actor", request_id="req_unit", source="api")
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class RecordingReadModels:
    """Stands in for the projection runner: remembers which positions it was asked to reach."""

    def __init__(self) -> None:
        self.waited_for: list[int] = []

    async def wait_until(self, position: int) -> None:
        self.waited_for.append(position)


class World:
    def __init__(self) -> None:
        self.clock = FakeClock(NOW)
        self.store = InMemoryEventStore(self.clock)
        self.read_models = RecordingReadModels()
        self.flags: dict[str, FlagOwner] = {}
        self.app = Application(
            HandlerDependencies(
                store=self.store,
                hasher=KeyHasher(b"p" * 32),
                clock=self.clock,
                plans={"free": 60, "pro": 600},
                key_id_for_hash=self.key_id_for_hash,
                flag_for=self.flag_for,
            ),
            read_models=self.read_models,
        )

    async def key_id_for_hash(self, key_hash: str) -> str | None:
        for event in await self.store.read_after(0):
            if isinstance(event.data, KeyCreated) and event.data.key_hash == key_hash:
                return event.data.key_id
        return None

    async def flag_for(self, flag_id: str, account_id: str | None) -> FlagOwner:
        flag = self.flags.get(flag_id)
        if flag is None or (account_id is not None and flag.account_id != account_id):
            raise NotFound(f"flag {flag_id} not found", field="flag_id")
        return flag

    async def open(self, name: str = "Acme", **options: object) -> OpenedAccount:
        return await self.app.execute(OpenAccount(name=name, **options), META)  # type: ignore[arg-type]


@pytest.fixture
def world() -> World:
    return World()


def test_every_command_has_exactly_one_handler() -> None:
    commands = {OpenAccount, ChangePlan, CreateKey, RevokeKey, RotateKey, ReportLeak, ResolveFlag}
    # The dashboard's (issue 11): key edits and members.
    commands |= {UpdateKey, SignUp, AddMember, SignIn, SignOut, ChangePassword}
    # The team (issue 12): invitations, roles, removal.
    commands |= {InviteMember, AcceptInvitation, RevokeInvitation, ChangeMemberRole, RemoveMember}
    assert set(HANDLERS) == commands
    assert all(issubclass(command, Command) for command in commands)


async def test_open_account_appends_account_and_first_key_at_once_and_waits_for_them(world: World) -> None:
    opened = await world.open("Acme", plan="pro")
    log = await world.store.read_after(0)
    assert [(e.stream_id, e.type) for e in log] == [
        (opened.account.account_id, "account_opened"),
        (opened.first_key.key.key_id, "key_created"),
    ]
    assert all(e.metadata == META for e in log)
    assert opened.account.plan == "pro"
    assert opened.first_key.secret.startswith("sk_rsv_")
    assert world.read_models.waited_for == [2]


async def test_create_key_checks_the_account_and_what_the_caller_may_grant(world: World) -> None:
    opened = await world.open()
    account_id = opened.account.account_id
    issued = await world.app.execute(CreateKey(account_id=account_id, name="web", scopes=["keys:read"]), META)
    assert (issued.key.account_id, issued.key.scopes) == (account_id, ("keys:read",))
    with pytest.raises(NotPermitted):
        await world.app.execute(
            CreateKey(account_id=account_id, scopes=["audit:read"], grantable=frozenset({"keys:read"})), META
        )
    with pytest.raises(NotFound):
        await world.app.execute(CreateKey(account_id="acct_missing"), META)
    assert await world.store.head() == 3


async def test_revoke_writes_once_and_hides_other_accounts_keys(world: World) -> None:
    acme, globex = await world.open("Acme"), await world.open("Globex")
    key_id = acme.first_key.key.key_id
    with pytest.raises(NotFound):
        await world.app.execute(RevokeKey(account_id=globex.account.account_id, key_id=key_id), META)
    revoked = await world.app.execute(
        RevokeKey(account_id=acme.account.account_id, key_id=key_id, reason="x"), META
    )
    assert (revoked.revoked_at, revoked.revoke_reason) == (NOW, "x")
    head = await world.store.head()
    again = await world.app.execute(RevokeKey(account_id=None, key_id=key_id), META)
    assert again == revoked
    assert await world.store.head() == head
    # Nothing was written the second time, so there was nothing to wait for.
    assert world.read_models.waited_for[-1] == head


async def test_rotate_appends_both_streams_and_returns_old_and_new(world: World) -> None:
    opened = await world.open()
    rotated = await world.app.execute(
        RotateKey(account_id=None, key_id=opened.first_key.key.key_id, grace_period_seconds=60), META
    )
    assert rotated.old.rotated_to == rotated.new.key.key_id
    assert rotated.new.key.rotated_from == rotated.old.key_id
    assert rotated.old.expires_at is not None
    assert (rotated.old.expires_at - NOW).total_seconds() == 60
    with pytest.raises(Conflict):
        await world.app.execute(RotateKey(account_id=None, key_id=rotated.old.key_id), META)


async def test_a_lost_race_is_a_concurrent_change_and_writes_nothing(world: World) -> None:
    opened = await world.open()
    real_append = world.store.append

    async def someone_else_wrote_first(*_: object, **__: object) -> list[object]:
        raise ConcurrencyConflict(opened.first_key.key.key_id, 1, 2)

    world.store.append = someone_else_wrote_first  # type: ignore[assignment,method-assign]
    with pytest.raises(ConcurrentChange):
        await world.app.execute(RevokeKey(account_id=None, key_id=opened.first_key.key.key_id), META)
    world.store.append = real_append  # type: ignore[method-assign]
    assert await world.store.head() == 2


async def test_change_plan_writes_only_a_real_change(world: World) -> None:
    opened = await world.open()
    account_id = opened.account.account_id
    assert (await world.app.execute(ChangePlan(account_id=account_id, plan="pro"), META)).plan == "pro"
    assert (await world.app.execute(ChangePlan(account_id=account_id, plan="pro"), META)).version == 2
    with pytest.raises(InvalidInput):
        await world.app.execute(ChangePlan(account_id=account_id, plan="gold"), META)
    assert await world.store.head() == 3


async def test_a_leak_of_a_known_key_is_recorded_once_and_unknown_ones_not_at_all(world: World) -> None:
    opened = await world.open()
    secret = opened.first_key.secret
    assert await world.app.execute(ReportLeak(secret=secret, source="x" * 5000), META) is True
    assert await world.app.execute(ReportLeak(secret=secret), META) is False
    assert await world.app.execute(ReportLeak(secret=generate_secret()), META) is False
    assert await world.app.execute(ReportLeak(secret="not a key"), META) is False
    [leak] = [e for e in await world.store.read_after(0) if isinstance(e.data, LeakReported)]
    assert isinstance(leak.data, LeakReported)
    assert leak.data.source == "x" * 2000
    key = await world.app.key(opened.first_key.key.key_id, account_id=None)
    assert key.revoke_reason == "leak reported"


async def test_resolve_flag_records_who_and_why_within_the_callers_account(world: World) -> None:
    opened = await world.open()
    account_id = opened.account.account_id
    world.flags["flg_1"] = FlagOwner("flg_1", account_id)
    with pytest.raises(NotFound):
        await world.app.execute(
            ResolveFlag(flag_id="flg_1", account_id="acct_other", resolution="confirmed"), META
        )
    with pytest.raises(InvalidInput):
        await world.app.execute(ResolveFlag(flag_id="flg_1", account_id=None, resolution="shrug"), META)
    await world.app.execute(
        ResolveFlag(flag_id="flg_1", account_id=account_id, resolution="confirmed", note="n"), META
    )
    await world.app.execute(ResolveFlag(flag_id="flg_1", account_id=None, resolution="mitigated"), META)
    history = await world.store.read_stream("flg_1")
    assert [(e.stream_version, e.data.resolution) for e in history] == [(1, "confirmed"), (2, "mitigated")]  # type: ignore[union-attr]
    assert {e.data.account_id for e in history} == {account_id}
