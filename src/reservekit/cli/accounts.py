"""``reservekit accounts create``."""

from __future__ import annotations

import argparse
from typing import Any

from reservekit.cli.context import JSON_HELP, cli_metadata, open_runtime, print_json
from reservekit.schemas import AccountWithKey, account_out, key_with_secret
from reservekit.settings import Settings
from reservekit.usecases.commands import OpenAccount


def register(commands: Any, _instant: Any) -> None:
    accounts = commands.add_parser("accounts", help="manage accounts").add_subparsers(
        dest="action", required=True
    )
    create = accounts.add_parser("create", help="open an account and print its first key (shown once)")
    create.add_argument("--name", required=True, help="the account's display name")
    create.add_argument(
        "--plan", default="free", help="rate-limit plan: free, pro, enterprise or one set in RESERVEKIT_PLANS"
    )
    create.add_argument("--operator", action="store_true", help="an operator account (platform:admin)")
    create.add_argument("--json", action="store_true", help=JSON_HELP)
    create.set_defaults(handler=run_create)


async def run_create(args: argparse.Namespace, settings: Settings) -> int:
    async with open_runtime(settings) as runtime:
        command = OpenAccount(name=args.name, plan=args.plan, operator=args.operator)
        opened = await runtime.application.execute(command, cli_metadata())
        account, issued = opened.account, opened.first_key
        result = AccountWithKey(
            account=account_out(account),
            key=key_with_secret(issued.key, issued.secret, now=runtime.clock.now()),
        )
    if args.json:
        print_json(result)
    else:
        print(
            f"account {account.account_id} ({account.name}, plan {account.plan}"
            f"{', operator' if account.operator else ''})"
        )
        print(f"key     {issued.key.key_id}")
        print(f"secret  {issued.secret}")
        print("Store the secret now: it is shown this once and cannot be retrieved later.")
    return 0
