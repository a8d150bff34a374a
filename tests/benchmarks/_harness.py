"""Shared plumbing for the benchmark scripts: real server processes, the CLI, clean shutdown.

Not a test module (pytest never collects ``tests/benchmarks``); imported by the ``bench_*.py`` scripts,
which are run directly with the project's interpreter.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

PYTHON = sys.executable
# Variables that would silently point a run at someone else's database, cache or key pepper.
_INHERITED_SETTINGS = ("RESERVEKIT_DATABASE_URL", "RESERVEKIT_REDIS_URL", "RESERVEKIT_KEY_PEPPER")


def base_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED_SETTINGS}
    env.update({"RESERVEKIT_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}, **overrides)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(command: Sequence[str], cpu: int | None) -> list[str]:
    """Prefix ``taskset -c CPU`` when there are at least two cores to split between server and client."""
    if cpu is None or shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return list(command)
    return ["taskset", "-c", str(cpu), *command]


def cli(env: Mapping[str, str], *args: str, timeout: float = 60) -> Any:
    """Run ``reservekit ARGS --json`` (or any subcommand) and return its parsed JSON output."""
    done = subprocess.run(
        [PYTHON, "-m", "reservekit.cli.main", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"reservekit {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return json.loads(done.stdout) if "--json" in args else done.stdout


def server_command(kind: str, port: int) -> list[str]:
    if kind == "granian":
        return [PYTHON, "-m", "reservekit.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if kind == "uvicorn":
        command = [PYTHON, "-m", "uvicorn", "--factory", "reservekit.web.app:create_app_from_env"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
        for option, module in (("--loop", "uvloop"), ("--http", "httptools")):
            if _importable(module):
                command += [option, module]
        return command
    raise ValueError(f"unknown server {kind!r}")


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


class Server:
    """One server process in its own process group, so stopping it also stops its workers."""

    ready_path = "/healthz"

    def __init__(self, kind: str, env: Mapping[str, str], *, cpu: int | None, log_path: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            pinned(server_command(kind, self.port), cpu),
            env=dict(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.log_path = log_path

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.process.returncode}; see {self.log_path}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.kind} on port {self.port} not ready after {timeout}s")

    def stop(self, timeout: float = 15) -> None:
        if self.process.poll() is None:
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # Workers share the group: make sure none outlives its parent.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): the value at or below which q% of samples fall."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * q // 100)))
    return ordered[int(rank) - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


class BenchRow:
    """One line of ``run_all.py``'s table: what was measured, its figure, and its ratio to the bare route.

    Every ``bench_*.py`` exposes ``run(quick: bool = False) -> list[BenchRow]`` (its ``main`` prints the
    same rows), so ``run_all.py`` can import and run them all in one process.
    """

    __slots__ = ("benchmark", "measure", "note", "ratio", "target", "unit", "value")

    def __init__(
        self,
        benchmark: str,
        measure: str,
        value: float,
        unit: str,
        *,
        ratio: float | None = None,
        target: str = "",
        note: str = "",
    ) -> None:
        self.benchmark, self.measure, self.value, self.unit = benchmark, measure, value, unit
        self.ratio, self.target, self.note = ratio, target, note

    def line(self) -> str:
        ratio = f"{self.ratio:.3f}" if self.ratio is not None else "-"
        return (
            f"| {self.benchmark} | {self.measure} | {self.value:,.1f} {self.unit} | {ratio} | "
            f"{self.target} | {self.note} |"
        )


TABLE_HEADER = "| benchmark | measure | figure | ratio to bare | target | note |\n|---|---|---|---|---|---|"


def print_rows(rows: Sequence[BenchRow]) -> None:
    print(TABLE_HEADER)
    for row in rows:
        print(row.line())


class BareServer(Server):
    """``bare_app.py`` under Granian, 1 worker: a Litestar route with no project code."""

    ready_path = "/"

    def __init__(
        self, env: Mapping[str, str], *, cpu: int | None, log_path: Path, factory: str = "bare_app:create_app"
    ) -> None:
        self.kind = "bare"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("ab")
        command = [PYTHON, "-m", "granian", "--interface", "asgi", "--factory", "--workers", "1"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--no-log", factory]
        self.process = subprocess.Popen(
            pinned(command, cpu),
            env={**env, "PYTHONPATH": str(Path(__file__).parent)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.log_path = log_path


class Worker:
    """``reservekit worker``: projections, detectors and webhook deliveries in their own process."""

    def __init__(self, env: Mapping[str, str], *, cpu: int | None, log_path: Path) -> None:
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            pinned([PYTHON, "-m", "reservekit.cli.main", "worker"], cpu),
            env=dict(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()


async def _pg_admin(pg: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg + "/postgres", timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def scratch_postgres(pg: str, name: str) -> Iterator[str]:
    """A fresh database on the PostgreSQL at ``pg`` (``postgresql://user@host:port``), dropped afterwards."""
    import asyncio

    asyncio.run(_pg_admin(pg, f'CREATE DATABASE "{name}"'))
    try:
        yield f"{pg}/{name}"
    finally:
        asyncio.run(_pg_admin(pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
