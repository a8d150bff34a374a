"""``reservekit projections status | rebuild``."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import projections as registry
from reservekit.cli.context import UserError, open_runtime
from reservekit.projecting.rebuild import (
    RebuildResult,
    position_as_of,
    rebuild_into,
    replace_live,
    verify_projection,
)
from reservekit.projecting.runner import projection_status
from reservekit.settings import Settings


def register(commands: Any, instant: Any) -> None:
    group = commands.add_parser("projections", help="inspect and rebuild read models").add_subparsers(
        dest="action", required=True
    )
    status = group.add_parser("status", help="name, checkpoint, head and lag of every projection")
    status.set_defaults(handler=run_status)
    rebuild = group.add_parser("rebuild", help="rebuild from the logs into fresh tables")
    rebuild.add_argument("name", nargs="?", help="one projection (default: all)")
    when = rebuild.add_mutually_exclusive_group()
    when.add_argument(
        "--until-position", type=int, metavar="N", help="forensic copy up to position N (live untouched)"
    )
    when.add_argument("--as-of", type=instant, metavar="T", help="forensic copy as of an RFC 3339 instant")
    rebuild.add_argument(
        "--verify", action="store_true", help="compare with the live tables; exit 1 on any difference"
    )
    rebuild.set_defaults(handler=run_rebuild)


async def run_status(_args: argparse.Namespace, settings: Settings) -> int:
    async with open_runtime(settings) as runtime:
        statuses = await projection_status(runtime.engine, runtime.runner.projections)
    print(f"{'projection':<16} {'version':>7} {'checkpoint':>11} {'head':>11} {'lag':>8}")
    for s in statuses:
        print(f"{s.name:<16} {s.version:>7} {s.checkpoint:>11} {s.head:>11} {s.lag:>8}")
    return 0


async def run_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    try:
        known = registry.build_all(settings)
        selected = [registry.by_name(known, args.name)] if args.name else list(known)
    except KeyError:
        names = ", ".join(p.name for p in known)
        raise UserError(f"no projection named {args.name!r}; known: {names}") from None
    if args.verify and (args.until_position is not None or args.as_of is not None):
        raise UserError(
            "--verify compares with the live tables; it cannot be combined with --until-position/--as-of"
        )
    console = Console(stderr=True)
    failed = False
    async with open_runtime(settings) as runtime:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            for projection in selected:
                task = bar.add_task(projection.name, total=None)
                until = args.until_position
                if args.as_of is not None:
                    until = await position_as_of(runtime.engine, projection, args.as_of)

                def advance(done: int, total: int, task: Any = task) -> None:
                    bar.update(task, completed=done, total=total)

                result: RebuildResult
                if args.verify:
                    result = await verify_projection(runtime.engine, projection, progress=advance)
                elif until is not None:
                    result = await rebuild_into(
                        runtime.engine, projection, suffix=f"__asof_{until}", until=until, progress=advance
                    )
                else:
                    result = await replace_live(
                        runtime.engine, projection, progress=advance, clock=runtime.clock
                    )
                failed = failed or bool(result.differences)
                _report(console, result, args.verify, until)
    return 1 if failed else 0


def _report(console: Console, result: RebuildResult, verify: bool, until: int | None) -> None:
    if verify:
        verdict = (
            "matches live"
            if not result.differences
            else f"DIFFERS from live ({len(result.differences)} rows)"
        )
        console.print(
            f"{result.projection}: replayed {result.events_applied} events"
            f" to position {result.until_position}: {verdict}"
        )
        for line in result.differences:
            console.print(f"  {line}", markup=False)
    elif until is not None:
        console.print(f"{result.projection}: as of position {until} in tables {', '.join(result.tables)}")
    else:
        console.print(f"{result.projection}: rebuilt from {result.events_applied} events and swapped in")
