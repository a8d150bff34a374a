"""Resolving a suspicious-usage flag: an event recording who resolved it, how and why.

A flag lives in a projection (the detectors write it from usage, not from events), so the handler asks
``deps.flag_for`` whether the caller may see it; another account's flag is reported like a missing one.
"""

from __future__ import annotations

from typing import Literal

from reservekit.domain.errors import ConcurrentChange, InvalidInput
from reservekit.domain.events import FlagResolved, Metadata
from reservekit.usecases.commands import ResolveFlag
from reservekit.usecases.dependencies import Handled, HandlerDependencies
from reservekit.usecases.ports import ConcurrencyConflict, StreamWrite

Resolution = Literal["false_positive", "confirmed", "mitigated"]
RESOLUTIONS: frozenset[str] = frozenset({"false_positive", "confirmed", "mitigated"})


async def handle_resolve_flag(
    command: ResolveFlag, deps: HandlerDependencies, metadata: Metadata
) -> Handled[None]:
    """Append ``FlagResolved`` (stream id = the flag id); every resolution is kept, the latest counts."""
    if command.resolution not in RESOLUTIONS:
        raise InvalidInput(f"resolution must be one of {', '.join(sorted(RESOLUTIONS))}", field="resolution")
    flag = await deps.flag_for(command.flag_id, command.account_id)
    history = await deps.store.read_stream(command.flag_id)
    version = history[-1].stream_version if history else 0
    event = FlagResolved(
        flag_id=command.flag_id,
        account_id=flag.account_id or metadata.actor_account_id or "",
        resolution=command.resolution,
        note=command.note,
    )
    try:
        recorded = await deps.store.append([StreamWrite(command.flag_id, version, [event])], metadata)
    except ConcurrencyConflict:
        raise ConcurrentChange(
            f"flag {command.flag_id} was resolved by a concurrent request; nothing was written"
        ) from None
    return Handled(None, recorded[-1].position)
