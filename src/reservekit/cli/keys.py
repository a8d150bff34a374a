"""``reservekit keys create | list | revoke | rotate``: the same use cases the API calls."""

from __future__ import annotations

import argparse
from typing import Any

from projections import api_keys, key_usage
from reservekit.cli.context import CLI_METADATA, open_runtime, print_json
from reservekit.db import read_transaction
from reservekit.schemas import key_out, key_with_secret
from reservekit.settings import Settings
from reservekit.usecases.commands import CreateKey, RevokeKey, RotateKey


def register(commands: Any, instant: Any) -> None:
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create a key and print its secret (shown once)")
    create.add_argument("--account", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--domain", action="append", dest="domains", metavar="DOMAIN")
    create.add_argument("--scope", action="append", dest="scopes", metavar="SCOPE")
    create.add_argument("--expires-at", type=instant)
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=run_create)
    listing = keys.add_parser("list", help="list an account's keys (never their secrets)")
    listing.add_argument("--account", required=True)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)
    revoke = keys.add_parser("revoke", help="revoke a key (takes effect on the next request)")
    revoke.add_argument("key_id")
    revoke.add_argument("--reason")
    revoke.set_defaults(handler=run_revoke)
    rotate = keys.add_parser(
        "rotate", help="issue a replacement; the old key works until the grace period ends"
    )
    rotate.add_argument("key_id")
    rotate.add_argument("--grace-period", type=int, default=0, metavar="SECONDS")
    rotate.add_argument("--json", action="store_true")
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
        issued = await runtime.application.execute(command, CLI_METADATA)
        out = key_with_secret(issued.key, issued.secret, now=runtime.clock.now())
    if args.json:
        print_json(out)
    else:
        print(f"key     {out.id} ({out.prefix}…{out.last4})\nsecret  {out.secret}")
        print("Store the secret now: it is shown this once and cannot be retrieved later.")
    return 0


async def run_list(args: argparse.Namespace, settings: Settings) -> int:
    async with open_runtime(settings) as runtime:
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
        state = await runtime.application.execute(command, CLI_METADATA)
    print(f"revoked {state.key_id}")
    return 0


async def run_rotate(args: argparse.Namespace, settings: Settings) -> int:
    async with open_runtime(settings) as runtime:
        command = RotateKey(account_id=None, key_id=args.key_id, grace_period_seconds=args.grace_period)
        rotated = await runtime.application.execute(command, CLI_METADATA)
        old = rotated.old
        out = key_with_secret(rotated.new.key, rotated.new.secret, now=runtime.clock.now())
    if args.json:
        print_json(out)
    else:
        print(f"rotated {old.key_id} -> {out.id}; old key works until {old.expires_at}\nsecret  {out.secret}")
    return 0
