"""``reservekit audit verify | export``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from reservekit.cli.context import open_runtime
from reservekit.clock import to_micros
from reservekit.db import read_transaction
from reservekit.events.store import row_to_event
from reservekit.events.tables import events
from reservekit.events.verify import verify_chain
from reservekit.settings import Settings


def register(commands: Any, instant: Any) -> None:
    group = commands.add_parser("audit", help="verify and export the event log").add_subparsers(
        dest="action", required=True
    )
    verify = group.add_parser("verify", help="recompute the hash chain; exit 1 naming the first bad position")
    verify.set_defaults(handler=run_verify)
    export = group.add_parser("export", help="write events as JSON lines (for a SIEM)")
    export.add_argument("--since", type=instant)
    export.add_argument("--until", type=instant)
    export.set_defaults(handler=run_export)


async def run_verify(_args: argparse.Namespace, settings: Settings) -> int:
    async with open_runtime(settings) as runtime:
        report = await verify_chain(runtime.engine)
    if report.ok:
        print(f"chain intact: {report.count} events, head {report.head_position} hash {report.head_hash}")
        return 0
    print(f"chain BROKEN at position {report.first_bad_position}: {report.reason}")
    return 1


async def run_export(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    encoder = msgspec.json.Encoder()
    async with open_runtime(settings) as runtime, read_transaction(runtime.engine) as conn:
        query = select(events).order_by(events.c.position)
        if args.since is not None:
            query = query.where(events.c.recorded_at_us >= to_micros(args.since))
        if args.until is not None:
            query = query.where(events.c.recorded_at_us < to_micros(args.until))
        result = await conn.stream(query.execution_options(yield_per=1000))
        async for row in result:
            sys.stdout.write(encoder.encode(row_to_event(row)).decode() + "\n")
    return 0
