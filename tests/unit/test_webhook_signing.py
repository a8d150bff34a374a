"""The signing recipe in docs/webhooks.md (openssl) and the domain's URL rules."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from standardwebhooks import Webhook

from reservekit.domain.errors import InvalidInput
from reservekit.domain.webhooks import validate_url
from reservekit.webhooks.secrets import SecretBox, generate_signing_secret
from reservekit.webhooks.sender import signed_headers

DOC_RECIPE = """
KEY_HEX=$(printf '%s' "${WEBHOOK_SECRET#whsec_}" | base64 -d | od -An -v -tx1 | tr -d ' \\n')
{ printf '%s.%s.' "$WEBHOOK_ID" "$WEBHOOK_TIMESTAMP"; cat body.json; } \\
  | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$KEY_HEX" -binary | base64
"""


def test_the_documented_openssl_recipe_reproduces_our_signature(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed for the documented recipe")
    assert DOC_RECIPE.strip().splitlines()[0] in Path("docs/webhooks.md").read_text()
    secret = generate_signing_secret()
    body = '{"data":{"id":"key_x"},"timestamp":"2026-11-28T12:00:00Z","type":"key.revoked"}'
    (tmp_path / "body.json").write_text(body)
    headers = signed_headers(secret, webhook_id="msg_doc", payload=body, at=datetime.now(UTC))
    env = {
        "PATH": "/usr/bin:/bin",
        "WEBHOOK_SECRET": secret,
        "WEBHOOK_ID": "msg_doc",
        "WEBHOOK_TIMESTAMP": headers["webhook-timestamp"],
    }
    out = subprocess.run(
        ["sh", "-c", DOC_RECIPE], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert headers["webhook-signature"] == "v1," + out.stdout.strip()
    assert Webhook(secret).verify(body, headers) == {
        "data": {"id": "key_x"},
        "timestamp": "2026-11-28T12:00:00Z",
        "type": "key.revoked",
    }


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/",
        "https://172.16.5.4/",
        "https://192.168.1.1/",
        "https://169.254.169.254/latest/meta-data",
        "https://[fe80::1]/",
        "https://[fc00::1]/",
        "https://0.0.0.0/",
        "https://user:pw@example.com/",
        "http://example.com/",
        "https://localhost/",
        "https://127.0.0.1/",
    ],
)
def test_urls_that_are_refused_without_the_loopback_setting(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_url(url, allow_loopback=False)
    assert refused.value.field == "url"


def test_loopback_and_http_only_with_the_development_setting() -> None:
    assert validate_url("http://127.0.0.1:8080/in", allow_loopback=True) == "http://127.0.0.1:8080/in"
    assert validate_url("http://localhost/in", allow_loopback=True) == "http://localhost/in"
    assert (
        validate_url("https://hooks.example.com/in", allow_loopback=False) == "https://hooks.example.com/in"
    )
    with pytest.raises(InvalidInput):
        validate_url("http://10.0.0.1/", allow_loopback=True)


def test_a_sealed_secret_opens_only_for_its_endpoint_and_version() -> None:
    box = SecretBox(b"p" * 32)
    sealed = box.seal("whsec_abc", endpoint_id="whe_1", version=1)
    assert "whsec_abc" not in sealed
    assert box.open(sealed, endpoint_id="whe_1", version=1) == "whsec_abc"
    assert "REDACTED" in repr(box)
    for endpoint_id, version in (("whe_2", 1), ("whe_1", 2)):
        with pytest.raises(InvalidTag):
            box.open(sealed, endpoint_id=endpoint_id, version=version)
    with pytest.raises(InvalidTag):
        SecretBox(b"q" * 32).open(sealed, endpoint_id="whe_1", version=1)
