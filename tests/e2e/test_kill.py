"""Nothing acknowledged is lost: SIGKILL the server while 32 clients append, then restart."""

from __future__ import annotations

import asyncio
import copy
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from ledger import schemas
from tests.e2e.conftest import _free_port, environment, officer_token, start

pytestmark = pytest.mark.slow
CLIENTS = 32


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
    token = await asyncio.to_thread(officer_token, env, tmp_path)
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
