"""A local spool of usage rows, so a killed process never loses an answered request's row.

Rows wait in memory for the next batch insert (``writer.py``); a ``kill -9`` would lose that second of
rows. Each row is therefore also appended to a spool file with one ``write`` (no fsync: the kernel
keeps the page when the process dies; only a machine crash can lose it) before the response starts.

- **Segments**: the writer appends to ``<pid>-<n>.jsonl``. Every flush *seals* the segment (new rows
  go to the next one); once the rows buffered at that moment are in the database, the sealed segments
  are deleted. A flush that fails keeps them.
- **Ownership**: each segment is held with ``flock`` while its process lives. Replay only takes
  segments it can lock, so replicas sharing a data directory never replay each other's live rows.
- **Replay** at start: rows of dead processes' segments are inserted unless the database already
  has them (same ``request_id`` and ``occurred_at_us``: the crash may have come between the insert
  and the delete), then the segments are deleted. A torn last line is skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import msgspec
import structlog

from reservekit.usage.records import UsageRecord

log = structlog.get_logger(__name__)
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(UsageRecord)
SUFFIX = ".jsonl"


class UsageSpool:
    """The append side, owned by one process's ``UsageWriter``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sequence = 0
        self._fd: int | None = None
        self._path: Path | None = None
        self._sealed: list[tuple[int, Path]] = []
        # pid for operators; a random part because one process may run several writers (tests, tools)
        self._name = f"{os.getpid()}-{secrets.token_hex(4)}"

    def append(self, record: UsageRecord) -> None:
        if self._fd is None:
            self._open_segment()
        assert self._fd is not None
        os.write(self._fd, _encoder.encode(record) + b"\n")

    def seal(self) -> None:
        """Close the current segment: rows appended from now on go to a new one."""
        if self._fd is not None and self._path is not None:
            self._sealed.append((self._fd, self._path))
            self._fd, self._path = None, None

    def discard_sealed(self) -> None:
        """Every sealed row is in the database: delete the sealed segments."""
        for fd, path in self._sealed:
            path.unlink(missing_ok=True)
            os.close(fd)  # closing releases the lock, after the name is gone
        self._sealed = []

    def close(self, *, keep: bool) -> None:
        """At shutdown: delete everything (all rows written) or keep the files for the next start."""
        self.seal()
        if not keep:
            self.discard_sealed()
            return
        for fd, _path in self._sealed:
            os.close(fd)
        self._sealed = []

    def _open_segment(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._sequence += 1
        path = self.directory / f"{self._name}-{self._sequence}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._fd, self._path = fd, path


@contextlib.contextmanager
def orphaned_segments(directory: Path) -> Iterator[list[tuple[Path, list[UsageRecord]]]]:
    """Segments no live process holds, with their rows, locked for the duration of the block.

    The caller inserts the rows, then the block's end deletes the segments (unless it raised).
    """
    held: list[tuple[int, Path, list[UsageRecord]]] = []
    try:
        for path in sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # a live process's segment
                continue
            held.append((fd, path, _read_rows(path)))
        yield [(path, rows) for _fd, path, rows in held]
        for _fd, path, _rows in held:
            path.unlink(missing_ok=True)
    finally:
        for fd, _path, _rows in held:
            os.close(fd)


def _read_rows(path: Path) -> list[UsageRecord]:
    rows: list[UsageRecord] = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(_decoder.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError):
            # Only the last line can be torn by a crash mid-write; anything else is reported.
            log.warning("usage_spool_line_skipped", file=path.name, line=number)
    return rows
