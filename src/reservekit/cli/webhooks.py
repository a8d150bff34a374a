"""``reservekit webhooks list | create | delete | deliveries``: the same use cases the API calls."""

from __future__ import annotations

import argparse
from typing import Any

import msgspec

from reservekit.cli.context import JSON_HELP, cli_metadata, open_runtime, print_json
from reservekit.db import read_transaction
from reservekit.domain.webhooks import WEBHOOK_EVENT_TYPES
from reservekit.settings import Settings
from reservekit.webhooks import deliveries, endpoints


def register(commands: Any, _instant: Any) -> None:
    hooks = commands.add_parser("webhooks", help="manage webhook endpoints").add_subparsers(
        dest="action", required=True
    )
    listing = hooks.add_parser("list", help="list an account's webhook endpoints (never their secrets)")
    listing.add_argument("--account", required=True, help="the account whose endpoints to list (acct_…)")
    listing.add_argument("--json", action="store_true", help=JSON_HELP)
    listing.set_defaults(handler=run_list)
    create = hooks.add_parser("create", help="add an endpoint and print its signing secret (shown once)")
    create.add_argument("--account", required=True, help="the account the endpoint belongs to (acct_…)")
    create.add_argument(
        "--url",
        required=True,
        help="https:// URL to deliver to (public addresses only; see docs/webhooks.md)",
    )
    create.add_argument(
        "--event-type",
        action="append",
        dest="event_types",
        required=True,
        choices=WEBHOOK_EVENT_TYPES,
        metavar="TYPE",
        help=f"repeat for several: {', '.join(WEBHOOK_EVENT_TYPES)}",
    )
    create.add_argument(
        "--min-flag-severity",
        default="low",
        choices=("low", "medium", "high", "critical"),
        help="flag.raised only for flags at least this severe (default low)",
    )
    create.add_argument("--description", help="a note for people (at most 500 characters)")
    create.add_argument("--json", action="store_true", help=JSON_HELP)
    create.set_defaults(handler=run_create)
    remove = hooks.add_parser("delete", help="delete an endpoint (its pending deliveries are cancelled)")
    remove.add_argument("endpoint_id", help="the endpoint to delete (whe_…)")
    remove.add_argument("--json", action="store_true", help=JSON_HELP)
    remove.set_defaults(handler=run_delete)
    sent = hooks.add_parser("deliveries", help="an endpoint's latest deliveries and their attempts")
    sent.add_argument("endpoint_id", help="the endpoint whose deliveries to show (whe_…)")
    sent.add_argument("--limit", type=int, default=20, help="how many of the latest deliveries (default 20)")
    sent.add_argument("--json", action="store_true", help=JSON_HELP)
    sent.set_defaults(handler=run_deliveries)


async def run_list(args: argparse.Namespace, settings: Settings) -> int:
    async with open_runtime(settings) as runtime:
        async with read_transaction(runtime.engine) as conn:
            states = await deliveries.list_endpoints(conn, args.account, limit=10_000)
        rows = await deliveries.endpoint_views(
            runtime.webhooks, states, runtime.webhooks.failing_after_errors
        )
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print(f"{row.id}  {row.status:<8} {row.url}  {','.join(row.event_types)}")
    return 0


async def run_create(args: argparse.Namespace, settings: Settings) -> int:
    async with open_runtime(settings) as runtime:
        created = await endpoints.create_endpoint(
            runtime.webhooks,
            account_id=args.account,
            url=args.url,
            event_types=args.event_types,
            min_flag_severity=args.min_flag_severity,
            description=args.description,
            metadata=cli_metadata(),
        )
        [view] = await deliveries.endpoint_views(
            runtime.webhooks, [created.endpoint], runtime.webhooks.failing_after_errors
        )
    out = deliveries.EndpointWithSecretOut(**{**_fields(view), "secret": created.secret})
    if args.json:
        print_json(out)
    else:
        print(f"endpoint {out.id} -> {out.url}\nsecret   {out.secret}")
        print("Store the secret now: it is shown this once (roll it with POST …/roll-secret).")
    return 0


async def run_delete(args: argparse.Namespace, settings: Settings) -> int:
    async with open_runtime(settings) as runtime:
        await endpoints.delete_endpoint(
            runtime.webhooks, account_id=None, endpoint_id=args.endpoint_id, metadata=cli_metadata()
        )
    if args.json:
        print_json({"id": args.endpoint_id, "deleted": True})
    else:
        print(f"deleted {args.endpoint_id}")
    return 0


async def run_deliveries(args: argparse.Namespace, settings: Settings) -> int:
    async with open_runtime(settings) as runtime:
        await endpoints.load_endpoint(runtime.webhooks, account_id=None, endpoint_id=args.endpoint_id)
        await runtime.runner.run_all_once()
        await runtime.dispatcher.materialise_all()  # show what is queued, even with no server running
        async with read_transaction(runtime.engine) as conn:
            page, _ = await deliveries.list_deliveries(conn, args.endpoint_id, limit=max(1, args.limit))
    if args.json:
        print_json(page)
    else:
        for row in page:
            last = row.last_status_code
            print(f"{row.id}  {row.event_type:<18} {row.status:<9} attempts={row.attempts} last={last}")
    return 0


def _fields(view: deliveries.EndpointOut) -> dict[str, Any]:
    return msgspec.structs.asdict(view)
