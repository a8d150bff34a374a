"""``reservekit members add``: how an operator lets a person into the dashboard when sign-up is closed."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from reservekit.cli.context import JSON_HELP, UserError, cli_metadata, open_runtime, print_json
from reservekit.domain.roles import ROLES
from reservekit.settings import Settings
from reservekit.usecases.commands import AddMember


def register(commands: Any, _instant: Any) -> None:
    members = commands.add_parser("members", help="manage dashboard members").add_subparsers(
        dest="action", required=True
    )
    add = members.add_parser("add", help="add a member (email + password) to an existing account")
    add.add_argument("--account", required=True, help="the account id (acct_…), e.g. from `accounts create`")
    add.add_argument("--email", required=True, help="the member's email: their sign-in name")
    add.add_argument(
        "--role",
        choices=ROLES,
        default="owner",
        help="what the member may do in the dashboard (docs/security.md, Roles); default owner",
    )
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of prompting (never from an argument)",
    )
    add.add_argument("--json", action="store_true", help=JSON_HELP)
    add.set_defaults(handler=run_add)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password (at least 12 characters): ")
    if getpass.getpass("Again: ") != first:
        raise UserError("the two passwords differ")
    return first


async def run_add(args: argparse.Namespace, settings: Settings) -> int:
    password = _read_password(args.password_stdin)
    async with open_runtime(settings) as runtime:
        command = AddMember(account_id=args.account, email=args.email, password=password, role=args.role)
        member = await runtime.application.execute(command, cli_metadata())
    if args.json:
        print_json(
            {
                "member_id": member.member_id,
                "account_id": member.account_id,
                "email": member.email,
                "role": member.role,
            }
        )
        return 0
    print(
        f"member {member.member_id} ({member.email}, {member.role}) can now sign in to the dashboard of"
        f" {member.account_id}"
    )
    return 0
