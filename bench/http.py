"""The real service over HTTP, beside a bare aiohttp handler measured in the same run.

    python -m bench.http [--seconds 10] [--connections 64] [--url POSTGRES_URL]

Starts ``bench.bare_server`` and then ``policy-ledger serve`` (on a scratch PostgreSQL
schema, holding the demo story), each as its own process, and drives them from this
process with an aiohttp load generator over 64 keep-alive connections: single-event
appends (POST /v1/policies), decisions (GET /v1/decisions) and inclusion proofs. Prints
requests/s and p50/p99 latency, and each rate as a ratio to the bare handler.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import itertools
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.common import DEFAULT_URL, percentile
from ledger import schemas

Request = Callable[[aiohttp.ClientSession, int], Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def load(make: Request, connections: int, seconds: float) -> tuple[float, float, float, int]:
    """Closed loop: ``connections`` clients send requests back to back for ``seconds``."""
    latencies: list[float] = []
    errors, counter = [0], itertools.count()
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def client() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with make(http, next(counter)) as response:
                    await response.read()
                    if response.status >= 400:
                        errors[0] += 1
                latencies.append(time.perf_counter() - started)

        begin = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(connections)))
        elapsed = time.perf_counter() - begin
    return len(latencies) / elapsed, percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000, errors[0]


def run_cli(env: dict[str, str], cwd: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "ledger", *args], env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr)
    return done.stdout.strip()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    schema, work = f"bench_{uuid.uuid4().hex[:10]}", tempfile.mkdtemp()
    admin = await asyncpg.connect(args.url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    bare_port, port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env |= {"LEDGER_DATABASE_URL": f"{args.url}?search_path={schema}", "LEDGER_PORT": str(port),
            "LEDGER_SIGNING_KEY_FILE": str(Path(work) / "key"), "LEDGER_LOG_LEVEL": "warning"}  # fmt: skip
    processes: list[asyncio.subprocess.Process] = []
    try:
        processes.append(
            await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.bare_server", str(bare_port))
        )
        await wait_ready(f"http://127.0.0.1:{bare_port}/")
        run_cli(env, work, "demo")
        token = run_cli(env, work, "tokens", "create", "--role", "policy-officer", "--name", "bench")
        processes.append(
            await asyncio.create_subprocess_exec(sys.executable, "-m", "ledger", "serve", env=env, cwd=work)
        )
        base = f"http://127.0.0.1:{port}"
        await wait_ready(f"{base}/readyz")
        await report(bare_port, base, token, args.connections, args.seconds)
    finally:
        for process in processes:
            process.terminate()
            await process.wait()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


async def report(bare_port: int, base: str, token: str, connections: int, seconds: float) -> None:
    run_id = uuid.uuid4().hex[:6]
    data = copy.deepcopy(dict(schemas.example("policy.issued/1")))
    data["app"] = {"name": f"BenchApp-{run_id}", "vendor": "Bench Ltd"}  # keep TikTok decisions to the story
    auth = {"Authorization": f"Bearer {token}"}
    bare_url = f"http://127.0.0.1:{bare_port}/bare"
    decision = f"{base}/v1/decisions?app=TikTok&organisation=cabinet-office&device=CO-GCS-TT-001&account=ukgov"
    cases: list[tuple[str, Request]] = [
        ("bare aiohttp POST JSON -> 201", lambda h, i: h.post(bare_url, json={"id": f"P-{i}", "data": data})),
        ("appends  POST /v1/policies", lambda h, i: h.post(f"{base}/v1/policies", headers=auth,
                                                           json={"id": f"POL-{run_id}-{i}", "data": data})),
        ("decisions GET /v1/decisions", lambda h, i: h.get(decision)),
        ("proofs   GET /v1/log/proofs/inclusion",
         lambda h, i: h.get(f"{base}/v1/log/proofs/inclusion?seq={random.randrange(5)}")),
    ]  # fmt: skip
    bare = 0.0
    for name, make in cases:
        rate, p50, p99, errors = await load(make, connections, seconds)
        bare = bare or rate
        print(f"{name:<40} {rate:8,.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
              f"  {rate / bare:5.2f}x bare  ({errors} errors)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
