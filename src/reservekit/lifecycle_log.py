"""One log line per lifecycle change this replica wrote: what changed, where in the log, and who did it.

Only identifiers and the envelope are logged, never an event's data (a key hash, a free-text reason):
the log is the place to read everything else, with the position printed here.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from reservekit.domain.events import RecordedEvent

log = structlog.get_logger("reservekit.lifecycle")


def log_lifecycle(batch: Sequence[RecordedEvent]) -> None:
    for recorded in batch:
        meta = recorded.metadata
        log.info(
            recorded.type,
            position=recorded.position,
            stream_id=recorded.stream_id,
            account_id=recorded.data.account_id,
            source=meta.source,
            actor_key_id=meta.actor_key_id,
            actor_os_user=meta.actor_os_user,
            request_id=meta.request_id,
        )
