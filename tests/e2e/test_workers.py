"""`serve --workers N`: processes sharing the port, each with its own writer, one gap-free log."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from ledger import schemas
from tests.e2e.conftest import Server, _free_port, environment, officer_token, start

pytestmark = pytest.mark.slow
APPENDS = 120


def workers_of(server: Server) -> list[int]:
    """The pids of the processes the server forked."""
    pid = server.process.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
    return " Z " not in stat  # a zombie has exited


def started(tmp_path: Path, database_url: str, workers: int) -> tuple[Server, dict[str, str]]:
    env = environment(tmp_path, database_url, _free_port()) | {
        "LEDGER_WORKERS": str(workers),
        "LEDGER_LOG_LEVEL": "info",
    }
    return start(env, tmp_path, "workers"), env


def appended_by(server: Server) -> set[int]:
    """The pids that answered POST /v1/policies, from the access log lines."""
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    return {line["pid"] for line in lines if line.get("event") == "request" and line.get("method") == "POST"}


async def append_many(url: str, secret: str) -> list[int]:
    """APPENDS policies, each over its own connection (so the kernel spreads them over workers)."""
    data = copy.deepcopy(dict(schemas.example("policy.issued/1")))

    async def one(n: int) -> int:
        auth = {"Authorization": f"Bearer {secret}"}
        async with (
            aiohttp.ClientSession(headers=auth) as http,
            http.post(f"{url}/v1/policies", json={"id": f"POL-W-{n}", "data": data}) as response,
        ):
            assert response.status == 201, await response.text()
            return int((await response.json())["seq"])

    return list(await asyncio.gather(*(one(n) for n in range(APPENDS))))


async def test_two_workers_append_into_one_gap_free_log_that_verifies(tmp_path: Path, database_url: str) -> None:
    server, env = started(tmp_path, database_url, workers=2)
    try:
        forked = workers_of(server)
        assert len(forked) == 1
        seqs = await append_many(server.url, await asyncio.to_thread(officer_token, env, tmp_path))
        assert sorted(seqs) == list(range(min(seqs), min(seqs) + APPENDS))
        verify = [sys.executable, "-m", "ledger", "verify", "--url", server.url]
        checked = await asyncio.to_thread(subprocess.run, verify, env=env, cwd=tmp_path, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        assert server.stop() == 0, server.output()
    assert appended_by(server) == {server.process.pid, *forked}


def test_the_migrations_the_first_process_applies_before_forking_are_logged(tmp_path: Path) -> None:
    server, _ = started(tmp_path, f"sqlite:///{tmp_path}/ledger.db", workers=2)
    try:
        lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
        [migrated] = [line for line in lines if line.get("event") == "migrated"]
        assert "0001_log" in migrated["migrations_applied"]
    finally:
        assert server.stop() == 0


def test_sigterm_stops_every_worker_with_code_0(tmp_path: Path) -> None:
    server, _ = started(tmp_path, f"sqlite:///{tmp_path}/ledger.db", workers=3)
    children = workers_of(server)
    assert len(children) == 2
    assert server.stop() == 0, server.output()
    assert not any(alive(pid) for pid in children)


def test_workers_shut_down_when_the_first_process_is_killed(tmp_path: Path) -> None:
    server, _ = started(tmp_path, f"sqlite:///{tmp_path}/ledger.db", workers=2)
    children = workers_of(server)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in children), server.output()


def test_several_workers_refuse_an_in_memory_database(tmp_path: Path) -> None:
    env = environment(tmp_path, "sqlite:///:memory:", _free_port()) | {"LEDGER_WORKERS": "2"}
    refused = subprocess.run([sys.executable, "-m", "ledger", "serve"], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=30)  # fmt: skip
    assert refused.returncode == 2
    assert "several workers cannot share an in-memory SQLite database" in refused.stderr


def test_a_port_in_use_is_refused_rather_than_shared(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = environment(tmp_path, f"sqlite:///{tmp_path}/ledger.db", port) | {"LEDGER_WORKERS": "2"}
        refused = subprocess.run([sys.executable, "-m", "ledger", "serve"], env=env, cwd=tmp_path,
                                 capture_output=True, text=True, timeout=30)  # fmt: skip
    assert refused.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in refused.stderr


def test_a_worker_that_dies_stops_the_service_with_code_1(tmp_path: Path) -> None:
    server, _ = started(tmp_path, f"sqlite:///{tmp_path}/ledger.db", workers=3)
    first, second = workers_of(server)
    os.kill(first, signal.SIGKILL)
    assert server.process.wait(timeout=20) == 1, server.output()
    assert not alive(second)
    assert "worker_died" in server.output()


def healthz_count(url: str) -> float:
    """ledger_http_requests_total for GET /healthz answered 200, as one scrape (over a new connection) says."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    pattern = r'ledger_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)'
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def test_any_worker_answers_a_scrape_with_every_workers_counts(tmp_path: Path) -> None:
    server, _ = started(tmp_path, f"sqlite:///{tmp_path}/ledger.db", workers=3)
    try:
        for _ in range(30):
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=5):
                pass
        assert {healthz_count(server.url) for _ in range(12)} == {30.0}
    finally:
        assert server.stop() == 0, server.output()


async def verdicts(url: str, count: int, auth: dict[str, str]) -> set[str]:
    """The verdicts of ``count`` current decisions, each asked over a new connection (any worker)."""
    ask = f"{url}/v1/decisions?app=TikTok&organisation=cabinet-office&account=ukgov&device=CO-GCS-TT-001"

    async def one() -> str:
        async with aiohttp.ClientSession(headers=auth) as http, http.get(ask) as response:
            assert response.status == 200, await response.text()
            return str((await response.json())["verdict"])

    return set(await asyncio.gather(*(one() for _ in range(count))))


async def checkpoint_sizes(url: str, count: int) -> set[int]:
    """The tree sizes of ``count`` latest checkpoints (0: none yet), each asked over a new connection."""

    async def one() -> int:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/v1/log/checkpoint") as response:
            if response.status == 404:
                return 0
            assert response.status == 200, await response.text()
            return int((await response.text()).splitlines()[1])

    return set(await asyncio.gather(*(one() for _ in range(count))))


async def test_every_worker_answers_after_a_write_with_the_write(tmp_path: Path, database_url: str) -> None:
    server, env = started(tmp_path, database_url, workers=2)
    create = [sys.executable, "-m", "ledger", "tokens", "create", "--role", "security-officer", "--name", "sec"]
    try:
        officer = {"Authorization": f"Bearer {await asyncio.to_thread(officer_token, env, tmp_path)}"}
        done = await asyncio.to_thread(subprocess.run, create, env=env, cwd=tmp_path, capture_output=True, text=True)
        security = {"Authorization": f"Bearer {done.stdout.strip()}"}
        now = datetime.now(UTC)
        ban = dict(schemas.example("policy.issued/1")) | {"applies_to": {"organisations": ["*"]}}
        grant = dict(schemas.example("exemption.granted/1")) | {
            "valid_from": stamp(now - timedelta(days=1)), "expires_at": stamp(now + timedelta(days=30))
        }  # fmt: skip
        grant.pop("policy_id")
        revoke = dict(schemas.example("exemption.revoked/1")) | {"effective_at": stamp(now - timedelta(hours=1))}
        async with aiohttp.ClientSession(server.url) as http:
            for path, body, who, verdict in (
                ("/v1/policies", {"id": "POL-TT", "data": ban}, officer, "prohibited"),
                ("/v1/policies/POL-TT/exemptions", {"id": "EX-1", "data": grant}, security, "allowed"),
                ("/v1/exemptions/EX-1/revoke", {"data": revoke}, security, "prohibited"),
            ):
                await verdicts(server.url, 8, officer)  # remembered by the workers, before the write
                await checkpoint_sizes(server.url, 8)
                async with http.post(path, json=body, headers=who) as response:
                    assert response.status == 201, await response.text()
                    seq = (await response.json())["seq"]
                assert await verdicts(server.url, 24, officer) == {verdict}
                assert await checkpoint_sizes(server.url, 24) == {seq + 1}
    finally:
        assert server.stop() == 0


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_a_token_revoked_by_the_command_line_is_refused_by_every_worker(
    tmp_path: Path, database_url: str
) -> None:
    server, env = started(tmp_path, database_url, workers=2)
    try:
        secret = await asyncio.to_thread(officer_token, env, tmp_path)
        [token_id] = re.findall(r"^(\w+)\s", await asyncio.to_thread(cli, env, tmp_path, "tokens", "list"), re.M)
        assert await statuses(server.url, secret, 16) == {200}  # remembered by the workers that answered
        await asyncio.to_thread(cli, env, tmp_path, "tokens", "revoke", token_id)
        for _ in range(200):  # the workers hear of it within moments of the command's commit
            if await statuses(server.url, secret, 1) == {401}:
                break
            await asyncio.sleep(0.01)
        assert await statuses(server.url, secret, 24) == {401}
    finally:
        assert server.stop() == 0


def cli(env: dict[str, str], tmp_path: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "ledger", *args], env=env, cwd=tmp_path, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return done.stdout


async def statuses(url: str, secret: str, count: int) -> set[int]:
    """The statuses of ``count`` reads with the token, each over a new connection (any worker)."""

    async def one() -> int:
        auth = {"Authorization": f"Bearer {secret}"}
        async with aiohttp.ClientSession() as http, http.get(f"{url}/v1/policies", headers=auth) as response:
            return response.status

    return set(await asyncio.gather(*(one() for _ in range(count))))
