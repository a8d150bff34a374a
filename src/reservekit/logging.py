"""structlog set-up: JSON lines on stdout in which no secret key can ever appear (SPEC §10).

structlog events and stdlib records (uvicorn, granian, SQLAlchemy, Alembic, ...) go through the same
chain, and ``redact_secrets`` runs after exceptions are formatted and right before rendering, so
tracebacks, nested values and third-party messages are all redacted. Nothing happens on import.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json as jsonlib
import logging
import re
import sys
import uuid
from typing import Any, TextIO

import msgspec
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"
REDACTED_KEY = "sk_rsv_[REDACTED]"
REDACTED_WEBHOOK_SECRET = "whsec_[REDACTED]"  # noqa: S105 - the replacement text, not a secret
# Any length: truncated, mistyped and display-prefix forms of a key are hidden too; webhook signing
# secrets (``whsec_`` + base64) likewise.
_KEY_RE = re.compile(r"sk_rsv_[0-9A-Za-z]+|whsec_[0-9A-Za-z+/=]+")
_KEY_BYTES_RE = re.compile(rb"sk_rsv_[0-9A-Za-z]+|whsec_[0-9A-Za-z+/=]+")
_KEY_MARK = "sk_rsv_"
_WEBHOOK_MARK = "whsec_"


def _replacement(match: re.Match[str]) -> str:
    return REDACTED_KEY if match.group().startswith(_KEY_MARK) else REDACTED_WEBHOOK_SECRET


def _replacement_bytes(match: re.Match[bytes]) -> bytes:
    return (REDACTED_KEY if match.group().startswith(b"sk_rsv_") else REDACTED_WEBHOOK_SECRET).encode()


def _has_mark(text: str) -> bool:
    return _KEY_MARK in text or _WEBHOOK_MARK in text


_SENSITIVE_NAME = re.compile(r"authorization|secret|pepper|password|token", re.IGNORECASE)
# Values whose text is fixed by their type: they cannot carry a key, so they pass untouched.
_ATOMIC: tuple[type, ...] = (
    bool, int, float, type(None), dt.date, dt.time, dt.timedelta, uuid.UUID, decimal.Decimal,
)  # fmt: skip
_KEEP_NATIVE: tuple[type, ...] = (bytes, bytearray, memoryview, *_ATOMIC[3:])
_PASSTHROUGH_KEYS = frozenset({"_record", "_from_structlog"})  # ProcessorFormatter's own metadata
_MAX_DEPTH = 20
_HANDLER_NAME = "reservekit"
# Libraries that may have attached their own (unredacted) handlers: make them propagate to ours.
STDLIB_LOGGERS = (
    "uvicorn", "uvicorn.error", "uvicorn.access", "granian", "_granian", "granian.access",
    "sqlalchemy", "alembic", "litestar", "asyncio",
)  # fmt: skip


# Field names repeat on every line: remember the verdict for the first few hundred names seen.
_SENSITIVE_CACHE: dict[str, bool] = {}
_SENSITIVE_CACHE_MAX = 512


def _is_sensitive(name: object) -> bool:
    if not isinstance(name, str):
        return False
    verdict = _SENSITIVE_CACHE.get(name)
    if verdict is None:
        verdict = _SENSITIVE_NAME.search(name) is not None
        if len(_SENSITIVE_CACHE) < _SENSITIVE_CACHE_MAX:
            _SENSITIVE_CACHE[name] = verdict
    return verdict


def _scrub_key(key: Any) -> Any:
    if isinstance(key, (str, *_ATOMIC)):
        return _scrub(key, 0)
    text = repr(key)
    return _scrub(text, 0) if _has_mark(text) else key


def _scrub_dict(value: dict[Any, Any], depth: int) -> dict[Any, Any]:
    return {_scrub_key(k): (REDACTED if _is_sensitive(k) else _scrub(v, depth + 1)) for k, v in value.items()}


def _scrub(value: Any, depth: int) -> Any:
    """Return ``value`` with every key-shaped substring replaced, recursing into containers."""
    if isinstance(value, str):
        return _KEY_RE.sub(_replacement, value) if _has_mark(value) else value
    if isinstance(value, _ATOMIC):
        return value
    if depth >= _MAX_DEPTH:
        return "[TOO DEEP]"
    if isinstance(value, dict):
        return _scrub_dict(value, depth)
    if isinstance(value, list | tuple | set | frozenset):
        items = [_scrub(item, depth + 1) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, bytes | bytearray | memoryview):
        return _KEY_BYTES_RE.sub(_replacement_bytes, bytes(value))
    # Anything else (dataclasses, Structs, exceptions, custom objects) is redacted in the form the
    # renderer would emit: its fields as builtins, or its repr.
    try:
        plain = msgspec.to_builtins(value, builtin_types=_KEEP_NATIVE, enc_hook=repr)
    except Exception:
        try:
            plain = repr(value)
        except Exception:
            plain = f"<unrepresentable {type(value).__name__}>"
    return _scrub(plain, depth + 1)


def redact_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Processor: hide every ``sk_rsv_…`` / ``whsec_…`` string and every secret-named field.

    Must run after exception formatting; a raw ``exc_info`` still present (e.g. under
    ``capture_logs``) is formatted here so the traceback text is redacted as well.
    """
    if "exc_info" in event_dict:
        event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
    redacted: EventDict = {}
    # The common shapes (a plain name with a plain string, number or None) are decided inline: this runs
    # for every line, the per-request access line included.
    for k, v in event_dict.items():
        key = k if type(k) is str and not _has_mark(k) else _scrub_key(k)
        if k in _PASSTHROUGH_KEYS:
            redacted[key] = v
        elif _is_sensitive(k):
            redacted[key] = REDACTED
        elif type(v) is str:
            redacted[key] = _KEY_RE.sub(_replacement, v) if _has_mark(v) else v
        elif v is None or type(v) is int or type(v) is float or type(v) is bool:
            redacted[key] = v
        else:
            redacted[key] = _scrub(v, 0)
    return redacted


# For ``structlog.testing.capture_logs(processors=REDACTION_PROCESSORS)``: same order as production.
REDACTION_PROCESSORS: tuple[Processor, ...] = (structlog.processors.format_exc_info, redact_secrets)

_ENCODER = msgspec.json.Encoder(enc_hook=repr)


def _dumps(obj: Any, **_: Any) -> str:
    """JSONRenderer serializer: msgspec for speed, stdlib json for what msgspec refuses."""
    try:
        return _ENCODER.encode(obj).decode()
    except (TypeError, ValueError, msgspec.MsgspecError):
        return jsonlib.dumps(obj, default=repr)


def level_number(level: str) -> int:
    number = logging.getLevelNamesMapping().get(level.strip().upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return number


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,  # request ids bound per request
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        # Plain text, never locals: rich/dict tracebacks can render variables no regex anticipates.
        structlog.processors.format_exc_info,
    ]


def configure_logging(*, level: str = "INFO", json: bool = True, stream: TextIO | None = None) -> None:
    """Send structlog and stdlib logging to stdout (or ``stream``) through one redacting chain.

    Safe to call again. ``json=False`` renders for humans (still redacted, exceptions as plain text).
    """
    numeric = level_number(level)
    stream = stream or sys.stdout
    renderer: Processor
    if json:
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    shared = _shared_processors()
    structlog.configure(
        processors=[*shared, redact_secrets, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        context_class=dict,
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redact_secrets, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in STDLIB_LOGGERS:
        library_logger = logging.getLogger(name)
        library_logger.handlers.clear()
        library_logger.propagate = True
