"""Schemathesis against the app's own OpenAPI document, on both backends, through a real server.

Every phase runs (examples, coverage, fuzzing, stateful links), positive and negative data, with the
checks: no 5xx, and status code, content type and body conform to the document. The fuzzer holds an
operator key on an account with a huge quota (hooks in ``st_hooks.py`` keep it from revoking or
rotating that key). Bounded: ``FUZZ_MAX_EXAMPLES`` per operation (10 in CI, about 20 s a backend);
raise it, and set ``FUZZ_SEED``, for a longer hunt.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.servers import Server, cli, server_env

pytestmark = pytest.mark.fuzz
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)
ST = str(Path(sys.executable).with_name("st"))


def test_no_5xx_and_every_answer_conforms_to_the_document(database_url: str, tmp_path: Path) -> None:
    env = server_env(database_url, tmp_path / "data", RESERVEKIT_PLANS="enterprise=100000000")
    created = json.loads(
        cli(
            env, "accounts", "create", "--name", "Fuzz", "--operator", "--plan", "enterprise", "--json"
        ).stdout
    )
    server = Server(env, tmp_path / "server.log")
    try:
        server.wait_ready()
        run = subprocess.run(
            [
                ST,
                "run",
                f"{server.url}/schema/openapi.json",
                "--header",
                f"Authorization: Bearer {created['key']['secret']}",
                "--checks",
                CHECKS,
                "--max-examples",
                os.environ.get("FUZZ_MAX_EXAMPLES", "10"),
                "--seed",
                os.environ.get("FUZZ_SEED", "20261128"),
                "--exclude-path-regex",
                "^/schema",
                "--workers",
                "2",
            ],
            env={
                **os.environ,
                "SCHEMATHESIS_HOOKS": "tests.fuzz.st_hooks",
                "FUZZ_PROTECTED_KEY_ID": created["key"]["id"],
                "FUZZ_PROTECTED_ACCOUNT_ID": created["account"]["id"],
                "PYTHONPATH": str(Path(__file__).parents[2]),
            },
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        server.stop()
    output = run.stdout + run.stderr
    counted = re.search(r"(\d+) generated, (\d+) passed", output)
    summary = counted.group(0) if counted else "no summary"
    print(f"schemathesis on {database_url.split(':')[0]}: {summary}")
    assert run.returncode == 0, output[-6000:]
    assert counted is not None, output[-3000:]
    assert counted.group(1) == counted.group(2)
    assert int(counted.group(1)) > 500, "the fuzzer barely ran"
    assert "Authentication failed" not in output, "the fuzzer lost its key half-way"
    assert "Traceback" not in (tmp_path / "server.log").read_text()
