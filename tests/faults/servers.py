"""Real processes for the fault suite: ``reservekit serve``, and a PostgreSQL and a Redis of the test's
own on spare ports (the shared ones on 5432/6379 are never stopped or restarted)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from tests.conftest import TEST_PEPPER


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESERVEKIT_")}
    env.update(
        RESERVEKIT_DATABASE_URL=database_url,
        RESERVEKIT_KEY_PEPPER=TEST_PEPPER,
        RESERVEKIT_DATA_DIR=str(data_dir),
        RESERVEKIT_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def cli(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reservekit.cli.main", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


class Server:
    """``reservekit serve`` in its own process group, so a kill reaches the server and its workers."""

    def __init__(self, env: Mapping[str, str], log_path: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reservekit.cli.main", "serve", "--port", str(self.port)],
            env=dict(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError("server did not become ready")

    def kill(self) -> None:
        """kill -9 of the whole process group: no shutdown hook runs."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
        self._log.close()


def pg_binaries() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class OwnPostgres:
    """A throw-away PostgreSQL cluster of the test's own, run as the ``postgres`` OS user on a spare port.

    Only this cluster is ever stopped or restarted; the shared one on 5432 is never touched.
    """

    def __init__(self, root: Path) -> None:
        binaries = pg_binaries()
        if binaries is None:
            raise RuntimeError("initdb/pg_ctl are not installed")
        self._bin = binaries
        self.port = free_port()
        self.root = root
        self.data = root / "pgdata"
        root.mkdir(parents=True, exist_ok=True)
        shutil.chown(root, user="postgres", group="postgres")
        self._as_postgres(str(self._bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    @property
    def admin_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._pg_ctl("start", "-w", "-t", "30", "-o", options, "-l", str(self.root / "postgres.log"))

    def stop(self) -> None:
        self._pg_ctl("stop", "-w", "-m", "fast")

    def restart(self) -> None:
        self._pg_ctl("restart", "-w", "-m", "fast", "-l", str(self.root / "postgres.log"))

    def create_database(self, name: str) -> None:
        self._as_postgres(
            str(self._bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-c", f"CREATE DATABASE {name}"
        )

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._pg_ctl("stop", "-w", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg_ctl(self, *args: str) -> None:
        self._as_postgres(str(self._bin / "pg_ctl"), "-D", str(self.data), *args)

    @staticmethod
    def _as_postgres(*command: str) -> None:
        runner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*runner, *command], check=True, capture_output=True, timeout=60, cwd="/")
