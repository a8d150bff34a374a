"""``reservekit keys create | list | revoke | rotate``: the same use cases the API calls."""

from __future__ import annotations

import argparse
from typing import Any

from projections import api_keys, key_usage
from reservekit.cli.context import JSON_HELP, cli_metadata, open_runtime, print_json
from reservekit.clock import format_instant
from reservekit.db import read_transaction
from reservekit.schemas import key_out, key_with_secret
from reservekit.settings import Settings
from reservekit.usecases.commands import CreateKey, RevokeKey, RotateKey


def register(commands: Any, instant: Any) -> None:
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create a key and print its secret (shown once)")
    create.add_argument("--account", required=True, metavar="ACCOUNT_ID", help="the account (acct_…)")
    create.add_argument("--name", required=True, help="a name to recognise the key by")
    create.add_argument(
        "--domain",
        action="append",
        dest="domains",
        metavar="DOMAIN",
        help="only requests from this origin host (repeatable; *.example.com allowed)",
    )
    create.add_argument(
        "--scope",
        action="append",
        dest="scopes",
        metavar="SCOPE",
        help="grant this scope (repeatable; default: every scope of the account but platform:admin)",
    )
    create.add_argument(
        "--expires-at", type=instant, metavar="T", help="RFC 3339 instant the key stops working"
    )
    create.add_argument("--json", action="store_true", help=JSON_HELP)
    create.set_defaults(handler=run_create)
    listing = keys.add_parser("list", help="list an account's keys (never their secrets)")
    listing.add_argument("--account", required=True, metavar="ACCOUNT_ID", help="the account (acct_…)")
    listing.add_argument("--json", action="store_true", help=JSON_HELP)
    listing.set_defaults(handler=run_list)
    revoke = keys.add_parser("revoke", help="revoke a key (takes effect on the next request)")
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key (key_…)")
    revoke.add_argument("--reason", help="why, kept in the audit trail")
    revoke.add_argument("--json", action="store_true", help=JSON_HELP)
    revoke.set_defaults(handler=run_revoke)
    rotate = keys.add_parser(
        "rotate", help="issue a replacement; the old key works until the grace period ends"
    )
    rotate.add_argument("key_id", metavar="KEY_ID", help="the key to replace (key_…)")
    rotate.add_argument(
        "--grace-period",
        type=int,
        default=0,
        metavar="SECONDS",
        help="how long the old key keeps working (0 to 604800; default 0)",
    )
    rotate.add_argument("--json", action="store_true", help=JSON_HELP)
    rotate.set_defaults(handler=run_rotate)


async def run_create(args: argparse.Namespace, settings: Settings) -> int:
    async with open_runtime(settings) as runtime:
        command = CreateKey(
            account_id=args.account,
            name=args.name,
            domains=args.domains,
            scopes=args.scopes,
            expires_at=args.expires_at,
        )
        issued = await runtime.application.execute(command, cli_metadata())
        out = key_with_secret(issued.key, issued.secret, now=runtime.clock.now())
    if args.json:
        print_json(out)
    else:
        print(f"key     {out.id} ({out.prefix}…{out.last4})\nsecret  {out.secret}")
        print("Store the secret now: it is shown this once and cannot be retrieved later.")
    return 0


async def run_list(args: argparse.Namespace, settings: Settings) -> int:
    async with open_runtime(settings) as runtime:
        await runtime.application.account(args.account)  # an unknown account is an error, not "no keys"
        async with read_transaction(runtime.engine) as conn:
            states = await api_keys.list_for_account(conn, args.account, limit=10_000)
            used = await key_usage.last_used_at(conn, [state.key_id for state in states])
        now = runtime.clock.now()
        rows = [key_out(state, now=now, last_used_at=used.get(state.key_id)) for state in states]
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print(f"{row.id}  {row.prefix}…{row.last4}  {row.status:<8} {row.name or ''}")
    return 0


async def run_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async with open_runtime(settings) as runtime:
        command = RevokeKey(account_id=None, key_id=args.key_id, reason=args.reason)
        state = await runtime.application.execute(command, cli_metadata())
        out = key_out(state, now=runtime.clock.now())
    if args.json:
        print_json(out)
    else:
        print(f"revoked {state.key_id}")
    return 0


async def run_rotate(args: argparse.Namespace, settings: Settings) -> int:
    async with open_runtime(settings) as runtime:
        command = RotateKey(account_id=None, key_id=args.key_id, grace_period_seconds=args.grace_period)
        rotated = await runtime.application.execute(command, cli_metadata())
        old = rotated.old
        out = key_with_secret(rotated.new.key, rotated.new.secret, now=runtime.clock.now())
    if args.json:
        print_json(out)
    else:
        until = format_instant(old.expires_at) if old.expires_at else "never"
        print(f"rotated {old.key_id} -> {out.id}; old key works until {until}\nsecret  {out.secret}")
    return 0
