"""No secret key may appear in any log line (SPEC §10); each test fails if redaction is removed."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from reservekit.keys.tokens import generate_secret
from reservekit.logging import REDACTED_KEY, REDACTION_PROCESSORS, configure_logging, redact_secrets


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def key() -> str:
    return generate_secret()


def assert_hidden(text: str, key: str) -> None:
    assert REDACTED_KEY in text
    assert key[7:] not in text  # the random part and checksum
    assert key[:11] not in text  # even the 4-char display prefix form


@dataclasses.dataclass
class Credentials:
    label: str
    pepper: bytes


def test_capture_logs_sees_redacted_message_fields_and_nesting(key: str) -> None:
    log = structlog.get_logger()
    with capture_logs(processors=REDACTION_PROCESSORS) as logs:
        log.info(
            f"issued {key}",
            field=key,
            truncated=key[:15],
            nested={"list": [key, (key,)], key: "as a dict key", "deeper": {"set": {key}}},
            obj=Credentials(label=f"for {key}", pepper=b"p" * 32),
            error=ValueError(f"bad {key}"),
            raw=key.encode(),
        )
    [entry] = logs
    assert entry["event"] == f"issued {REDACTED_KEY}"
    assert entry["field"] == entry["truncated"] == REDACTED_KEY
    assert entry["nested"]["list"] == [REDACTED_KEY, (REDACTED_KEY,)]
    assert entry["nested"][REDACTED_KEY] == "as a dict key"
    assert entry["obj"] == {"label": f"for {REDACTED_KEY}", "pepper": "[REDACTED]"}
    assert entry["raw"] == REDACTED_KEY.encode()
    assert_hidden(repr(logs), key)


def test_capture_logs_redacts_exception_text(key: str) -> None:
    log = structlog.get_logger()
    for processors in (REDACTION_PROCESSORS, [redact_secrets]):  # raw exc_info handled by the processor too
        with capture_logs(processors=processors) as logs:
            try:
                raise RuntimeError(f"lookup failed for {key}")
            except RuntimeError:
                log.exception("auth failed")
        [entry] = logs
        assert "exc_info" not in entry
        assert "RuntimeError: lookup failed for" in entry["exception"]
        assert_hidden(repr(logs), key)


def test_sensitive_field_names_are_blanked_case_insensitively() -> None:
    event = redact_secrets(
        None,
        "info",
        {"event": "req", "Authorization": "Basic dXNlcjpwYXNz", "headers": {"X-Api-Token": "t0k"},
         "db_password": "hunter2", "key_pepper": b"x" * 32, "client_secret": None},
    )  # fmt: skip
    assert event["Authorization"] == event["db_password"] == event["key_pepper"] == "[REDACTED]"
    assert event["headers"] == {"X-Api-Token": "[REDACTED]"}
    assert event["client_secret"] == "[REDACTED]"
    assert "hunter2" not in repr(event)
    assert "dXNlcjpwYXNz" not in repr(event)
    untouched = {"event": "plain sk_rsv_ mention", "count": 3}
    assert redact_secrets(None, "info", dict(untouched)) == untouched


def test_configured_json_pipeline_redacts_everything(key: str, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level="DEBUG")
    structlog.contextvars.bind_contextvars(request_id="req_1", presented=key)
    log = structlog.get_logger("test")
    log.info("key %s presented", key, field=key, nested={"a": [key], key: 1}, authorization=f"Bearer {key}")
    try:
        raise ValueError(f"bad key {key}")
    except ValueError:
        log.exception("failed", key_id="key_1")
    out = capsys.readouterr().out
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["event"] == f"key {REDACTED_KEY} presented"
    assert first["request_id"] == "req_1"
    assert first["level"] == "info"
    assert first["timestamp"].endswith("Z")
    assert first["authorization"] == "[REDACTED]"
    assert second["level"] == "error"
    assert "ValueError: bad key " + REDACTED_KEY in second["exception"]
    assert_hidden(out, key)


def test_stdlib_records_go_through_the_same_redaction(key: str, capsys: pytest.CaptureFixture[str]) -> None:
    stray = io.StringIO()
    logging.getLogger("uvicorn.error").addHandler(logging.StreamHandler(stray))  # a library's own handler
    configure_logging()
    logging.getLogger("x").warning("presented %s", key)
    logging.getLogger("uvicorn.error").error("bad header %r", {"authorization": key})
    try:
        raise KeyError(key)
    except KeyError:
        logging.getLogger("sqlalchemy.pool").exception("pool error")
    out = capsys.readouterr().out
    records: list[dict[str, Any]] = [json.loads(line) for line in out.splitlines()]
    assert [r["logger"] for r in records] == ["x", "uvicorn.error", "sqlalchemy.pool"]
    assert records[0] == records[0] | {"event": f"presented {REDACTED_KEY}", "level": "warning"}
    assert "KeyError" in records[2]["exception"]
    assert stray.getvalue() == ""
    assert_hidden(out, key)


def test_console_renderer_is_redacted_too(key: str, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=False)
    log = structlog.get_logger()
    log.info("console", field=key)
    try:
        raise ValueError(key)
    except ValueError:
        log.exception("boom")
    logging.getLogger("alembic").warning(key)
    out = capsys.readouterr().out
    assert out.count(REDACTED_KEY) == 3  # field, traceback, stdlib message
    assert_hidden(out, key)


def test_level_filtering_and_bad_level(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level="warning")
    structlog.get_logger().info("hidden")
    logging.getLogger("x").info("hidden too")
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging(level="LOUD")


def test_webhook_signing_secrets_are_hidden_in_log_lines() -> None:
    from reservekit.webhooks.secrets import generate_signing_secret

    secret = generate_signing_secret()
    log = structlog.get_logger()
    with capture_logs(processors=REDACTION_PROCESSORS) as logs:
        log.warning(f"receiver said {secret}", nested={"list": [secret]}, raw=secret.encode())
    text = json.dumps(logs, default=repr)
    assert "whsec_[REDACTED]" in text
    assert secret[6:] not in text


def test_a_key_used_as_a_top_level_field_name_is_hidden(key: str) -> None:
    log = structlog.get_logger()
    with capture_logs(processors=REDACTION_PROCESSORS) as logs:
        log.info("named", **{key: "value", "plain": 1, "none": None, "ratio": 0.5, "flag": True})
    [entry] = logs
    assert_hidden(repr(entry), key)
    assert (entry["plain"], entry["none"], entry["ratio"], entry["flag"]) == (1, None, 0.5, True)
    assert entry[REDACTED_KEY] == "value"
