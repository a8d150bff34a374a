"""``reservekit projections status | rebuild``."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

import projections as registry
from reservekit.cli.context import JSON_HELP, UserError, open_runtime, print_json
from reservekit.projecting.rebuild import (
    FORENSIC_MARKER,
    RebuildResult,
    drop_forensic_tables,
    forensic_tables,
    position_as_of,
    rebuild_into,
    replace_live,
    verify_projection,
)
from reservekit.projecting.runner import projection_status
from reservekit.settings import Settings


class RateColumn(ProgressColumn):
    """Positions replayed per second (events or usage rows), averaged over the last few updates."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "-/s", style="progress.data.speed")


def register(commands: Any, instant: Any) -> None:
    group = commands.add_parser("projections", help="inspect and rebuild read models").add_subparsers(
        dest="action", required=True
    )
    status = group.add_parser("status", help="name, checkpoint, head and lag of every projection")
    status.add_argument("--json", action="store_true", help=JSON_HELP)
    status.set_defaults(handler=run_status)
    rebuild = group.add_parser("rebuild", help="rebuild from the logs into fresh tables")
    rebuild.add_argument("name", nargs="?", help="one projection (default: all)")
    when = rebuild.add_mutually_exclusive_group()
    when.add_argument(
        "--until-position",
        type=_position,
        metavar="N",
        help="forensic copy up to position N, 1 to the log head (live untouched)",
    )
    when.add_argument("--as-of", type=instant, metavar="T", help="forensic copy as of an RFC 3339 instant")
    rebuild.add_argument(
        "--verify", action="store_true", help="compare with the live tables; exit 1 on any difference"
    )
    rebuild.add_argument("--json", action="store_true", help=JSON_HELP)
    rebuild.set_defaults(handler=run_rebuild)
    copies = group.add_parser(
        "copies", help="list or drop the forensic copies that --until-position/--as-of left behind"
    ).add_subparsers(dest="copies_action", required=True)
    listing = copies.add_parser("list", help="every forensic copy's tables")
    listing.add_argument("--json", action="store_true", help=JSON_HELP)
    listing.set_defaults(handler=run_copies_list)
    drop = copies.add_parser("drop", help="drop forensic copies (never a live table)")
    drop.add_argument("tables", nargs="*", metavar="TABLE", help="tables to drop (default: every copy)")
    drop.add_argument("--json", action="store_true", help=JSON_HELP)
    drop.set_defaults(handler=run_copies_drop)


def _position(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a log position") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a log position (positions start at 1)")
    return value


async def run_status(args: argparse.Namespace, settings: Settings) -> int:
    async with open_runtime(settings) as runtime:
        statuses = await projection_status(runtime.engine, runtime.runner.projections)
    if args.json:
        print_json(
            [
                {
                    "name": s.name,
                    "version": s.version,
                    "checkpoint": s.checkpoint,
                    "head": s.head,
                    "lag": s.lag,
                }
                for s in statuses
            ]
        )
        return 0
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
    results: list[RebuildResult] = []
    async with open_runtime(settings, catch_up=False) as runtime:
        if args.until_position is not None:
            head = await runtime.application.deps.store.head()
            if args.until_position > head:
                raise UserError(f"--until-position {args.until_position} is past the log head ({head})")
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
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
                        runtime.engine,
                        projection,
                        suffix=f"{FORENSIC_MARKER}{until}",
                        until=until,
                        progress=advance,
                    )
                else:
                    result = await replace_live(
                        runtime.engine, projection, progress=advance, clock=runtime.clock
                    )
                failed = failed or bool(result.differences)
                results.append(result)
                if not args.json:
                    _report(console, result, args.verify, until)
    if args.json:
        print_json(results)
    return 1 if failed else 0


async def run_copies_list(args: argparse.Namespace, settings: Settings) -> int:
    async with open_runtime(settings) as runtime:
        tables = await forensic_tables(runtime.engine)
    if args.json:
        print_json(tables)
    else:
        print("\n".join(tables) if tables else "no forensic copies")
    return 0


async def run_copies_drop(args: argparse.Namespace, settings: Settings) -> int:
    async with open_runtime(settings) as runtime:
        existing = await forensic_tables(runtime.engine)
        chosen = args.tables or existing
        unknown = sorted(set(chosen) - set(existing))
        if unknown:
            raise UserError(
                f"not a forensic copy: {', '.join(unknown)} (see `reservekit projections copies list`)"
            )
        await drop_forensic_tables(runtime.engine, chosen)
    if args.json:
        print_json({"dropped": chosen})
    else:
        print(f"dropped {len(chosen)} table(s)")
    return 0


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
