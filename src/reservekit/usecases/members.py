"""Sign up, add a member, sign in, sign out, change a password: the dashboard's people.

The events say who did what (``member_added``, ``member_signed_in``, …) and carry no password material.
Password hashes and sessions live in the ``MemberDirectory`` (plain rows beside the log): a password
hash in an append-only, hash-chained log could never be removed or replaced after a breach.
"""

from __future__ import annotations

from reservekit.domain.accounts import AccountState, decide_open_account, fold_account
from reservekit.domain.errors import Conflict, NotFound
from reservekit.domain.events import (
    MemberPasswordChanged,
    MemberSignedIn,
    MemberSignedOut,
    Metadata,
)
from reservekit.domain.members import (
    MemberState,
    SignInRefused,
    TooManyAttempts,
    check_new_password,
    decide_add_member,
    fold_member,
    normalise_email,
)
from reservekit.ids import new_id
from reservekit.usecases.accounts import load_account
from reservekit.usecases.commands import (
    AddMember,
    ChangePassword,
    SignedIn,
    SignedUp,
    SignIn,
    SignOut,
    SignUp,
)
from reservekit.usecases.dependencies import Handled, HandlerDependencies
from reservekit.usecases.ports import ConcurrencyConflict, Credential, MemberDirectory, Passwords, StreamWrite


def _ports(deps: HandlerDependencies) -> tuple[MemberDirectory, Passwords]:
    if deps.members is None or deps.passwords is None:
        raise RuntimeError("members are not configured in this composition root")
    return deps.members, deps.passwords


async def load_member(deps: HandlerDependencies, member_id: str) -> MemberState:
    member = fold_member(await deps.store.read_stream(member_id)) if member_id.startswith("mem_") else None
    if member is None:
        raise NotFound(f"member {member_id} not found")
    return member


async def _claim(deps: HandlerDependencies, email: str, credential: Credential) -> None:
    members, _ = _ports(deps)
    if not await members.claim_email(email, credential):
        raise Conflict("an account with this email already exists; sign in instead", field="email")


async def handle_sign_up(command: SignUp, deps: HandlerDependencies, metadata: Metadata) -> Handled[SignedUp]:
    """Claim the email first (unique across replicas), then append; a failed append releases it."""
    members, passwords = _ports(deps)
    email = normalise_email(command.email)
    check_new_password(command.password)
    # Each sign-up costs an Argon2 hash and opens an account: it counts against the sign-in IP bucket.
    if not await deps.sign_in_gate(f"ip:{metadata.client_ip or 'unknown'}"):
        raise TooManyAttempts()
    account_id, member_id = new_id("acct"), new_id("mem")
    opened = decide_open_account(
        account_id=account_id, name=email, plan="free", operator=False, plans=deps.plans, existing=None
    )
    added = decide_add_member(member_id=member_id, account_id=account_id, email=email)
    await _claim(deps, email, Credential(member_id, account_id, await passwords.hash(command.password)))
    try:
        recorded = await deps.store.append(
            [StreamWrite(account_id, 0, opened), StreamWrite(member_id, 0, list(added))],
            _as_member(metadata, member_id, account_id),
        )
    except BaseException:
        await members.release_email(email)
        raise
    account = fold_account(e for e in recorded if e.stream_id == account_id)
    member = fold_member(e for e in recorded if e.stream_id == member_id)
    assert isinstance(account, AccountState)
    assert member is not None
    return Handled(SignedUp(account, member), recorded[-1].position)


async def handle_add_member(
    command: AddMember, deps: HandlerDependencies, metadata: Metadata
) -> Handled[MemberState]:
    members, passwords = _ports(deps)
    account = await load_account(deps.store, command.account_id)
    email = normalise_email(command.email)
    check_new_password(command.password)
    member_id = new_id("mem")
    added = decide_add_member(
        member_id=member_id, account_id=account.account_id, email=email, role=command.role
    )
    await _claim(
        deps, email, Credential(member_id, account.account_id, await passwords.hash(command.password))
    )
    try:
        recorded = await deps.store.append([StreamWrite(member_id, 0, list(added))], metadata)
    except BaseException:
        await members.release_email(email)
        raise
    member = fold_member(recorded)
    assert member is not None
    return Handled(member, recorded[-1].position)


async def handle_sign_in(command: SignIn, deps: HandlerDependencies, metadata: Metadata) -> Handled[SignedIn]:
    """One Argon2 verification on every path, so an unknown email takes as long as a wrong password."""
    members, passwords = _ports(deps)
    email = (command.email or "").strip().lower()
    ip_allowed = await deps.sign_in_gate(f"ip:{metadata.client_ip or 'unknown'}")
    email_allowed = await deps.sign_in_gate(f"email:{email}")
    if not (ip_allowed and email_allowed):
        raise TooManyAttempts()
    credential = await members.credential(email) if email else None
    matches = await passwords.verify(credential.password_hash if credential else None, command.password)
    if credential is None or not matches:
        raise SignInRefused()
    member = await load_member(deps, credential.member_id)
    if member.removed:  # the credential outlived a removal that stopped half-way: the log decides
        raise SignInRefused()
    token = await members.open_session(member.member_id, member.account_id)
    event = MemberSignedIn(member_id=member.member_id, account_id=member.account_id)
    position = await _append_to_member(
        deps, member.member_id, event, _as_member(metadata, member.member_id, member.account_id)
    )
    return Handled(SignedIn(member, token), position)


async def handle_sign_out(command: SignOut, deps: HandlerDependencies, metadata: Metadata) -> Handled[None]:
    members, _ = _ports(deps)
    await members.close_session(command.session_token)
    event = MemberSignedOut(member_id=command.member_id, account_id=command.account_id)
    return Handled(None, await _append_to_member(deps, command.member_id, event, metadata))


async def handle_change_password(
    command: ChangePassword, deps: HandlerDependencies, metadata: Metadata
) -> Handled[str]:
    members, passwords = _ports(deps)
    member = await load_member(deps, command.member_id)
    credential = await members.credential(member.email)
    current = credential.password_hash if credential and credential.member_id == member.member_id else None
    if not await passwords.verify(current, command.current_password):
        raise SignInRefused()
    check_new_password(command.new_password, field="new_password")
    await members.set_password_hash(member.member_id, await passwords.hash(command.new_password))
    await members.close_all_sessions(member.member_id)
    token = await members.open_session(member.member_id, member.account_id)
    event = MemberPasswordChanged(member_id=member.member_id, account_id=member.account_id)
    return Handled(token, await _append_to_member(deps, member.member_id, event, metadata))


async def _append_to_member(
    deps: HandlerDependencies,
    member_id: str,
    event: MemberSignedIn | MemberSignedOut | MemberPasswordChanged,
    metadata: Metadata,
) -> int:
    """Sign-ins from two browsers may race; the record of each is appended after the other."""
    for _ in range(5):
        member = await load_member(deps, member_id)
        try:
            recorded = await deps.store.append([StreamWrite(member_id, member.version, [event])], metadata)
        except ConcurrencyConflict:
            continue
        return recorded[-1].position
    raise Conflict(f"member {member_id} changed concurrently; retry")


def _as_member(metadata: Metadata, member_id: str, account_id: str) -> Metadata:
    """Sign-up and sign-in happen before there is a session: the member they concern is the actor."""
    if metadata.actor_member_id is not None:
        return metadata
    return Metadata(
        actor_account_id=account_id,
        actor_member_id=member_id,
        request_id=metadata.request_id,
        client_ip=metadata.client_ip,
        user_agent=metadata.user_agent,
        source=metadata.source,
    )
