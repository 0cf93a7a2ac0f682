"""The real service as a subprocess (``python -m ledger serve``) on a SQLite file of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from ledger.config import Config

ORIGIN = "ledger.e2e.example/device-policy"
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]
    config: Config  # the same database and key file, for a second writer in the test process
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then the exit code (pytest.fail if it takes longer than ``timeout``)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the server did not exit within {timeout} s of SIGTERM:\n{self.output()}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited with {server.process.returncode} before it was ready:\n{server.output()}")
        try:
            with urllib.request.urlopen(f"{server.url}/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    pytest.fail(f"the server was not ready within {START_TIMEOUT} s:\n{server.output()}")


@contextmanager
def serving(folder: Path) -> Iterator[Server]:
    """``policy-ledger serve`` on a SQLite file in ``folder``, killed afterwards if still running."""
    port = _free_port()
    config = Config(database_url=f"sqlite:///{folder}/ledger.db", origin=ORIGIN, signing_key_file=folder / "key")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env |= {"LEDGER_DATABASE_URL": config.database_url, "LEDGER_SIGNING_KEY_FILE": str(config.signing_key_file),
            "LEDGER_ORIGIN": ORIGIN}  # fmt: skip
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ledger", "serve", "--port", str(port)],
            env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    running = Server(f"http://127.0.0.1:{port}", process, config, log)
    try:
        _wait_ready(running)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with serving(tmp_path) as running:
        yield running


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for a module's tests that only read from it and leave it running."""
    with serving(tmp_path_factory.mktemp("served")) as running:
        yield running


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.db"
        return
    url, schema = request.getfixturevalue("postgres_url"), f"kill_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{url}?search_path={schema}"
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


def environment(tmp_path: Path, database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return env | {"LEDGER_DATABASE_URL": database_url, "LEDGER_SIGNING_KEY_FILE": str(tmp_path / "key"),
                  "LEDGER_PORT": str(port), "LEDGER_LOG_LEVEL": "warning"}  # fmt: skip


def officer_token(env: dict[str, str], tmp_path: Path) -> str:
    """A policy-officer token made by the command line, for the database in ``env``."""
    create = [sys.executable, "-m", "ledger", "tokens", "create", "--role", "policy-officer", "--name", "load"]
    return subprocess.run(create, env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()


def start(env: dict[str, str], tmp_path: Path, name: str) -> Server:
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "ledger", "serve"], env=env, cwd=tmp_path, stdout=out,
                                   stderr=subprocess.STDOUT)  # fmt: skip
    server = Server(f"http://127.0.0.1:{env['LEDGER_PORT']}", process, None, log)  # type: ignore[arg-type]
    _wait_ready(server)
    return server
