"""Read models built from the logs. One module per projection; ``ALL`` is the registry the engine runs."""

from __future__ import annotations

from projections import accounts, api_keys
from reservekit.projecting.spec import AnyProjection

ALL: tuple[AnyProjection, ...] = (accounts.PROJECTION, api_keys.PROJECTION)  # type: ignore[assignment]


def by_name(name: str) -> AnyProjection:
    for projection in ALL:
        if projection.name == name:
            return projection
    raise KeyError(name)
