"""SIGTERM while clients append: appends in flight finish, the server exits 0, nothing acknowledged is lost."""

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
CLIENTS = 16


async def append_until_closed(url: str, token: str, acknowledged: dict[str, int], statuses: list[int],
                              enough: asyncio.Event) -> None:  # fmt: skip
    data = copy.deepcopy(dict(schemas.example("policy.issued/1")))

    async def client(n: int) -> None:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            for i in range(10_000):
                policy_id = f"POL-T-{n}-{i}"
                try:
                    async with http.post(f"{url}/v1/policies", json={"id": policy_id, "data": data}) as response:
                        statuses.append(response.status)
                        if response.status == 201:
                            acknowledged[policy_id] = (await response.json())["seq"]
                            if len(acknowledged) >= 200:
                                enough.set()
                except (TimeoutError, aiohttp.ClientError):
                    return  # the server closed the connection, or is gone: stop

    await asyncio.gather(*(client(n) for n in range(CLIENTS)))


@pytest.mark.parametrize("workers", [1, 3])
async def test_sigterm_during_appends_answers_what_it_took_and_loses_nothing(
    tmp_path: Path, database_url: str, workers: int
) -> None:
    env = environment(tmp_path, database_url, _free_port()) | {"LEDGER_WORKERS": str(workers)}
    cli = [sys.executable, "-m", "ledger"]
    token = await asyncio.to_thread(officer_token, env, tmp_path)
    server = start(env, tmp_path, "first")
    acknowledged: dict[str, int] = {}
    statuses: list[int] = []
    enough = asyncio.Event()
    load = asyncio.create_task(append_until_closed(server.url, token, acknowledged, statuses, enough))
    await enough.wait()
    server.process.send_signal(signal.SIGTERM)
    await load
    assert await asyncio.to_thread(server.process.wait, 15) == 0, server.output()
    assert set(statuses) == {201}, f"answers other than 201 while stopping: {sorted(set(statuses))}"

    again = start(env, tmp_path, "second")
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{again.url}/v1/log/checkpoint") as response:
                size = int((await response.text()).splitlines()[1])
            assert size == len(acknowledged)  # every event recorded was answered 201 before the exit
            for policy_id, seq in acknowledged.items():
                async with http.get(f"{again.url}/v1/log/events/{seq}") as response:
                    assert (await response.json())["event"]["stream"] == f"policy/{policy_id}"
    finally:
        assert again.stop() == 0
    verify = [*cli, "verify"]
    verified = await asyncio.to_thread(subprocess.run, verify, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
