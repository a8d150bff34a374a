"""Read models built from the logs. One module per projection; ``build_all`` is the registry the engine runs.

Projections whose rules take settings (detector thresholds) are built from those settings, so the
registry is a function of Settings rather than a constant.
"""

from __future__ import annotations

from projections import (
    accounts,
    api_keys,
    key_usage,
    leak_flags,
    usage_flags,
    webhook_outbox,
    webhook_usage_outbox,
)
from reservekit.projecting.spec import AnyProjection
from reservekit.settings import Settings


def build_all(settings: Settings) -> tuple[AnyProjection, ...]:
    return (  # type: ignore[return-value]
        accounts.PROJECTION,
        api_keys.PROJECTION,
        key_usage.PROJECTION,
        usage_flags.make_projection(settings.detectors),
        leak_flags.PROJECTION,
        webhook_outbox.PROJECTION,
        webhook_usage_outbox.PROJECTION,
    )


def by_name(projections: tuple[AnyProjection, ...], name: str) -> AnyProjection:
    for projection in projections:
        if projection.name == name:
            return projection
    raise KeyError(name)
