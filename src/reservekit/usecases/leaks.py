"""Leak reports: anyone may hand in a leaked ``sk_rsv_`` key; a known one is revoked and flagged.

The caller learns nothing: every report gets the same answer whether the key is malformed, unknown,
active or already revoked (the web layer returns the same 202 for all). A key's leak is recorded
once: ``LeakReported`` both revokes the key (see ``domain.keys.evolve_key``) and is what the
``leak_flags`` projection turns into a critical flag; a second report of the same key writes nothing.
"""

from __future__ import annotations

from reservekit.domain.events import LeakReported, Metadata
from reservekit.domain.keys import MAX_LEAK_SOURCE_CHARS, fold_key
from reservekit.keys.tokens import is_well_formed
from reservekit.usecases.commands import ReportLeak
from reservekit.usecases.dependencies import Handled, HandlerDependencies
from reservekit.usecases.ports import ConcurrencyConflict, StreamWrite

_ATTEMPTS = 3


async def handle_report_leak(
    command: ReportLeak, deps: HandlerDependencies, metadata: Metadata
) -> Handled[bool]:
    """Record a leak of a known key not yet reported; the result says whether an event was written."""
    if not is_well_formed(command.secret):
        return Handled(False)
    key_id = await deps.key_id_for_hash(deps.hasher.digest(command.secret))
    if key_id is None:
        return Handled(False)
    source = (command.source or "")[:MAX_LEAK_SOURCE_CHARS] or None
    for _ in range(_ATTEMPTS):
        history = await deps.store.read_stream(key_id)
        state = fold_key(history)
        if state is None or any(isinstance(e.data, LeakReported) for e in history):
            return Handled(False)
        event = LeakReported(key_id=key_id, account_id=state.account_id, source=source)
        try:
            recorded = await deps.store.append(
                [StreamWrite(key_id, history[-1].stream_version, [event])], metadata
            )
        except ConcurrencyConflict:
            continue  # a concurrent revoke, rotation or report: re-read and decide again
        return Handled(True, recorded[-1].position)
    return Handled(False)
