"""``reservekit audit verify | export``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import msgspec

from reservekit.audit.checkpoint import (
    check_against_log,
    load_or_create_signing_key,
    read_checkpoint,
    sign_checkpoint,
)
from reservekit.cli.context import JSON_HELP, UserError, open_database_read_only, open_runtime, print_json
from reservekit.clock import SystemClock, format_instant, to_micros
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
    verify.add_argument(
        "--checkpoint", type=Path, metavar="FILE", help="also check the log against a signed head"
    )
    verify.add_argument(
        "--public-key", metavar="BASE64", help="the signing key to trust (default: the file's own)"
    )
    verify.add_argument("--json", action="store_true", help=JSON_HELP)
    verify.set_defaults(handler=run_verify)
    checkpoint = group.add_parser(
        "checkpoint", help="write a signed head of the log to a file outside the database"
    )
    checkpoint.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="where to write the signed checkpoint (JSON)"
    )
    checkpoint.add_argument(
        "--signing-key",
        type=Path,
        metavar="PEM",
        help="Ed25519 key (default: audit-signing-key.pem in the data dir)",
    )
    checkpoint.add_argument("--json", action="store_true", help=JSON_HELP)
    checkpoint.set_defaults(handler=run_checkpoint)
    export = group.add_parser("export", help="write events as JSON lines (for a SIEM); always JSON")
    export.add_argument("--since", type=instant, metavar="T", help="events recorded at or after T (RFC 3339)")
    export.add_argument("--until", type=instant, metavar="T", help="events recorded before T (RFC 3339)")
    export.set_defaults(handler=run_export)


async def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    checkpoint = (
        read_checkpoint(args.checkpoint, trusted_public_key=args.public_key) if args.checkpoint else None
    )
    async with open_database_read_only(settings) as engine:
        report = await verify_chain(engine)
        problem = await check_against_log(engine, checkpoint) if checkpoint and report.ok else None
    intact = report.ok and not problem
    if args.json:
        print_json(
            {
                "intact": intact,
                "events": report.count,
                "head_position": report.head_position,
                "head_hash": report.head_hash,
                "first_bad_position": report.first_bad_position,
                "reason": report.reason,
                "checkpoint_problem": problem,
            }
        )
        return 0 if intact else 1
    if not report.ok:
        print(f"chain BROKEN at position {report.first_bad_position}: {report.reason}")
        return 1
    if problem:
        print(f"checkpoint MISMATCH: {problem}")
        return 1
    print(f"chain intact: {report.count} events, head {report.head_position} hash {report.head_hash}")
    if checkpoint:
        print(
            f"checkpoint holds: position {checkpoint.position} signed {format_instant(checkpoint.created_at)}"
        )
    return 0


async def run_checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    key = load_or_create_signing_key(args.signing_key or settings.data_dir / "audit-signing-key.pem")
    async with open_database_read_only(settings) as engine:
        report = await verify_chain(engine)
    checkpoint = sign_checkpoint(report, key, SystemClock().now())
    args.out.write_bytes(msgspec.json.encode(checkpoint) + b"\n")
    if args.json:
        print_json(checkpoint)
        return 0
    print(
        f"checkpoint of position {checkpoint.position} written to {args.out}"
        f"; public key {checkpoint.public_key}"
    )
    return 0


async def run_export(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    if args.since is not None and args.until is not None and args.since > args.until:
        raise UserError(f"--since {format_instant(args.since)} is after --until {format_instant(args.until)}")
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
