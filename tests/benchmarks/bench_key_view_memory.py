"""Key view memory (issue 14 target 5): bytes per cached key, measured with tracemalloc over 100k keys.

Builds the in-memory key view the way a replica does when it applies ``key_created`` events (its own
appends or the tailer's), with realistic keys: distinct ids, hashes, one account per key (the worst
case for sharing), the common scope sets, and a domain list on every tenth key. Counts everything
the view holds per key: the entry, its strings, the hash index and the id index.

    .venv/bin/python tests/benchmarks/bench_key_view_memory.py [--keys 100000]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
from datetime import UTC, datetime

from _harness import BenchRow, print_rows

from reservekit.auth.key_view import KeyView
from reservekit.domain.events import KeyCreated, Metadata, RecordedEvent
from reservekit.ids import new_id
from reservekit.keys.tokens import KeyHasher, generate_secret

TARGET_BYTES = 600
SCOPE_SETS = (
    ("services:read", "services:write"),
    ("services:read",),
    ("keys:read", "keys:write", "services:read", "services:write", "usage:read"),
)


def _fresh(strings: tuple[str, ...]) -> tuple[str, ...]:
    return tuple("".join([text[:1], text[1:]]) for text in strings)


def _events(count: int) -> list[RecordedEvent]:
    hasher = KeyHasher(b"p" * 32)
    recorded_at = datetime(2026, 1, 1, tzinfo=UTC)
    metadata = Metadata(source="cli")
    out = []
    for n in range(count):
        secret = generate_secret()
        event = KeyCreated(
            key_id=new_id("key"),
            account_id=new_id("acct"),
            key_hash=hasher.digest(secret),
            prefix=secret[:11],
            last4=secret[-4:],
            name=f"key {n}",
            # Fresh strings and tuples per key, as decoding each event from the log makes them.
            domains=_fresh(("app.example.com", "*.example.org")) if n % 10 == 0 else (),
            scopes=_fresh(SCOPE_SETS[n % len(SCOPE_SETS)]),
        )
        out.append(
            RecordedEvent(
                position=n + 1,
                stream_id=event.key_id,
                stream_version=1,
                type="key_created",
                data=event,
                metadata=metadata,
                recorded_at=recorded_at,
                prev_hash="",
                hash="",
            )
        )
    return out


def measure(keys: int) -> float:
    view = KeyView(engine=None, capacity=keys)  # type: ignore[arg-type]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    # Traced from here: the ids, hashes and scope strings the view keeps were allocated for events.
    events = _events(keys)
    for start in range(0, keys, 1000):
        view.apply_own(events[start : start + 1000])
    # The events themselves are not the view's: what stays is what the view references.
    events.clear()
    view._own_recent.clear()  # the bounded list of own appends (4,096), not per key
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(view) == keys
    return (after - before) / keys


def run(quick: bool = False, *, keys: int | None = None) -> list[BenchRow]:
    keys = keys or (20_000 if quick else 100_000)
    per_key = measure(keys)
    return [
        BenchRow(
            "key_view_memory",
            f"bytes per cached key ({keys:,} keys, tracemalloc)",
            per_key,
            "B",
            target=f"<= {TARGET_BYTES} B",
            note="met" if per_key <= TARGET_BYTES else "missed",
        )
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print_rows(run(args.quick, keys=None if args.quick else args.keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
