"""Nothing acknowledged is lost: SIGKILL the server while 32 clients append, then restart."""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from ledger import schemas
from tests.e2e.conftest import Server, _free_port, _wait_ready

pytestmark = pytest.mark.slow
CLIENTS = 32


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


def start(env: dict[str, str], tmp_path: Path, name: str) -> Server:
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "ledger", "serve"], env=env, cwd=tmp_path, stdout=out,
                                   stderr=subprocess.STDOUT)  # fmt: skip
    server = Server(f"http://127.0.0.1:{env['LEDGER_PORT']}", process, None, log)  # type: ignore[arg-type]
    _wait_ready(server)
    return server


async def append_until_killed(url: str, token: str, acknowledged: dict[str, int], enough: asyncio.Event) -> None:
    data = copy.deepcopy(dict(schemas.example("policy.issued/1")))
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:

        async def client(n: int) -> None:
            for i in range(10_000):
                policy_id = f"POL-{n}-{i}"
                try:
                    async with http.post(f"{url}/v1/policies", json={"id": policy_id, "data": data}) as response:
                        if response.status == 201:
                            acknowledged[policy_id] = (await response.json())["seq"]
                            if len(acknowledged) >= 300:
                                enough.set()
                except (TimeoutError, aiohttp.ClientError):
                    return

        await asyncio.gather(*(client(n) for n in range(CLIENTS)))


async def test_every_acknowledged_append_survives_a_sigkill(tmp_path: Path, database_url: str) -> None:
    env = environment(tmp_path, database_url, _free_port())
    cli = [sys.executable, "-m", "ledger"]
    create = [*cli, "tokens", "create", "--role", "policy-officer", "--name", "load"]
    made = await asyncio.to_thread(subprocess.run, create, env=env, cwd=tmp_path, capture_output=True, text=True)
    token = made.stdout.strip()
    server = start(env, tmp_path, "first")
    acknowledged: dict[str, int] = {}
    enough = asyncio.Event()
    load = asyncio.create_task(append_until_killed(server.url, token, acknowledged, enough))
    await enough.wait()
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    await load

    again = start(env, tmp_path, "second")
    try:
        async with aiohttp.ClientSession() as http:
            for policy_id, seq in acknowledged.items():
                async with http.get(f"{again.url}/v1/log/events/{seq}") as response:
                    assert response.status == 200
                    assert (await response.json())["event"]["stream"] == f"policy/{policy_id}"
    finally:
        assert again.stop() == 0
    verified = await asyncio.to_thread(
        subprocess.run, [*cli, "verify"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("OK: all ")
