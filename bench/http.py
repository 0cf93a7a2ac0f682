"""The real service over HTTP, beside a bare aiohttp handler measured in the same run.

    python -m bench.http [--seconds 10] [--connections 64] [--workers 1] [--url POSTGRES_URL]

Starts ``bench.bare_server`` and then ``policy-ledger serve`` (on a scratch PostgreSQL
schema, holding the demo story, with ``--workers`` processes), each as its own process,
and drives them over 64 keep-alive connections with ``wrk`` (Debian's package; one thread, Lua scripts for
unique ids) when it is installed, else with an aiohttp load generator in this process
(which takes a core's share itself): single-event appends (POST /v1/policies), without
and with an Idempotency-Key,
decisions (GET /v1/decisions, with a service token: one question asked again and again, whose
reads each worker remembers while the log stands still, then questions about 50,000 accounts,
most of them read from the database) and inclusion proofs. Each is driven for 2 s unmeasured
first: the first burst opens each worker's database connections and prepares its
statements. Prints requests/s and p50/p99 latency, each rate as a ratio to the bare handler;
the CPU time each request cost the server (bare, or the service's processes), PostgreSQL and
the whole machine (load generator included), with how busy the machine was (near 100%: the rate
is what this many cores can do at that cost); and the share of the machine's CPU time a
hypervisor took meanwhile (steal).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import itertools
import json
import os
import random
import re
import shutil
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

from bench.common import DEFAULT_URL, cpu_ticks, cpu_use, percentile, process_tree, stolen_share
from ledger import event_loop, schemas

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


async def load(make: Request, connections: int, seconds: float, first: int = 0) -> tuple[float, float, float, int]:
    """Closed loop: ``connections`` clients send requests back to back for ``seconds``, the
    requests numbered from ``first``."""
    latencies: list[float] = []
    errors, counter = [0], itertools.count(first)
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


WARM_UP = 2.0  # seconds each case is driven, unmeasured, before it is measured
ACCOUNTS = 50_000  # accounts asked about: more questions than a worker remembers the reads of (10,000)

_WRK_SCRIPT = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
function init(args)
  n = tonumber(args[1] or "0")  -- the first number of this run's ids: a run repeats none of another's
end
function request()
  n = n + 1
  return %s
end
"""


def wrk_script(folder: str, name: str, request: str) -> str:
    path = Path(folder) / f"{name}.lua"
    path.write_text(_WRK_SCRIPT % request)
    return str(path)


def lua(text: str) -> str:
    return f"[==[{text}]==]"


async def wrk_load(
    url: str, script: str, connections: int, seconds: float, first: int = 0
) -> tuple[float, float, float, int]:
    """wrk's requests/s, p50 and p99 (ms) and non-2xx answers, from its --latency report;
    the ids the script makes are numbered from ``first``."""
    process = await asyncio.create_subprocess_exec(
        "wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "--latency", "-s", script, url, "--", str(first),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out = (await process.communicate())[0].decode()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50, p99 = (_ms(re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)$", out, re.M)) for p in (50, 99))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, p50, p99, int(errors.group(1)) if errors else 0


def _ms(match: re.Match[str] | None) -> float:
    assert match is not None, "wrk printed no latency distribution"
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


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
    parser.add_argument("--workers", type=int, default=1, help="serving processes (LEDGER_WORKERS)")
    args = parser.parse_args()
    schema, work = f"bench_{uuid.uuid4().hex[:10]}", tempfile.mkdtemp()
    admin = await asyncpg.connect(args.url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    bare_port, port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env |= {"LEDGER_DATABASE_URL": f"{args.url}?search_path={schema}", "LEDGER_PORT": str(port),
            "LEDGER_SIGNING_KEY_FILE": str(Path(work) / "key"), "LEDGER_LOG_LEVEL": "warning",
            "LEDGER_WORKERS": str(args.workers)}  # fmt: skip
    processes: list[asyncio.subprocess.Process] = []
    try:
        processes.append(
            await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.bare_server", str(bare_port))
        )
        await wait_ready(f"http://127.0.0.1:{bare_port}/")
        run_cli(env, work, "demo")
        token = run_cli(env, work, "tokens", "create", "--role", "policy-officer", "--name", "bench")
        service = run_cli(env, work, "tokens", "create", "--role", "service", "--name", "bench-service")
        processes.append(
            await asyncio.create_subprocess_exec(sys.executable, "-m", "ledger", "serve", env=env, cwd=work)
        )
        base = f"http://127.0.0.1:{port}"
        await wait_ready(f"{base}/readyz")
        print(f"service: policy-ledger serve with {args.workers} worker process(es), PostgreSQL")
        servers = [processes[0].pid], process_tree(processes[1].pid)  # the service's workers too
        await report(bare_port, base, token, service, args.connections, args.seconds, servers)
    finally:
        for process in processes:
            process.terminate()
            await process.wait()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


async def report(
    bare_port: int,
    base: str,
    token: str,
    service: str,
    connections: int,
    seconds: float,
    servers: tuple[list[int], list[int]],
) -> None:
    """Drive each case and print its figures; ``servers``: the bare server's process and the service's."""
    run_id = uuid.uuid4().hex[:6]
    data = copy.deepcopy(dict(schemas.example("policy.issued/1")))
    data["app"] = {"name": f"BenchApp-{run_id}", "vendor": "Bench Ltd"}  # keep TikTok decisions to the story
    auth, asker = {"Authorization": f"Bearer {token}"}, {"Authorization": f"Bearer {service}"}
    bare_url = f"http://127.0.0.1:{bare_port}/bare"
    decision = "/v1/decisions?app=TikTok&organisation=cabinet-office&device=CO-GCS-TT-001&account=ukgov"
    varied = "/v1/decisions?app=TikTok&organisation=cabinet-office&device=D-1&account=acct-"  # + a number
    body = json.dumps(data)
    post = ('wrk.format("POST", %s, {["Content-Type"] = "application/json"%s}, '
            'string.format(\'{"id":"%s-%%d-%%d","data":%%s}\', tid, n, %s))')  # fmt: skip
    cases: list[tuple[str, str, Request, str]] = [
        ("bare aiohttp POST JSON -> 201", bare_url,
         lambda h, i: h.post(bare_url, json={"id": f"P-{i}", "data": data}),
         post % (lua("/bare"), "", "P", lua(body))),
        ("appends  POST /v1/policies", f"{base}/v1/policies",
         lambda h, i: h.post(f"{base}/v1/policies", headers=auth, json={"id": f"POL-{run_id}-{i}", "data": data}),
         post % (lua("/v1/policies"), f", [\"Authorization\"] = {lua(auth['Authorization'])}", f"POL-{run_id}",
                 lua(body))),
        ("  each with an Idempotency-Key", f"{base}/v1/policies",
         lambda h, i: h.post(f"{base}/v1/policies", headers=auth | {"Idempotency-Key": f"{run_id}-{i}"},
                             json={"id": f"POL-{run_id}-k{i}", "data": data}),
         post % (lua("/v1/policies"), f", [\"Authorization\"] = {lua(auth['Authorization'])}, "
                 f"[\"Idempotency-Key\"] = string.format(\"{run_id}-%d-%d\", tid, n)", f"POL-{run_id}-k",
                 lua(body))),
        ("decisions GET /v1/decisions", f"{base}{decision}", lambda h, i: h.get(f"{base}{decision}", headers=asker),
         f'wrk.format("GET", {lua(decision)}, {{["Authorization"] = {lua(asker["Authorization"])}}})'),
        ("  50,000 different questions", f"{base}{varied}",
         lambda h, i: h.get(f"{base}{varied}{random.randrange(ACCOUNTS)}", headers=asker),
         f'wrk.format("GET", {lua(varied)} .. math.random(0, {ACCOUNTS - 1}), '
         f'{{["Authorization"] = {lua(asker["Authorization"])}}})'),
        ("proofs   GET /v1/log/proofs/inclusion", f"{base}/v1/log/proofs/inclusion",
         lambda h, i: h.get(f"{base}/v1/log/proofs/inclusion?seq={random.randrange(5)}"),
         'wrk.format("GET", "/v1/log/proofs/inclusion?seq=" .. math.random(0, 4))'),
    ]  # fmt: skip
    use_wrk = shutil.which("wrk") is not None
    print(f"load generator: {'wrk (one thread)' if use_wrk else 'aiohttp client in this process (no wrk found)'}, "
          f"{connections} connections, {seconds:.0f} s each")  # fmt: skip
    bare, ticks = 0.0, cpu_ticks()
    with tempfile.TemporaryDirectory() as folder:
        for index, (name, url, make, request) in enumerate(cases):
            pids = servers[0] if index == 0 else servers[1]
            if use_wrk:
                script = wrk_script(folder, str(index), request)
                await wrk_load(url, script, connections, WARM_UP)
                before = cpu_use(pids)
                rate, p50, p99, errors = await wrk_load(url, script, connections, seconds, first=10**9)
            else:
                await load(make, connections, WARM_UP)
                before = cpu_use(pids)
                rate, p50, p99, errors = await load(make, connections, seconds, first=10**9)
            used = before.per(cpu_use(pids), rate * seconds, "server" if index == 0 else "service")
            bare = bare or rate
            print(f"{name:<40} {rate:8,.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
                  f"  {rate / bare:5.2f}x bare  ({errors} errors)")  # fmt: skip
            print(f"    {used}")
    print(stolen_share(ticks, cpu_ticks()))


if __name__ == "__main__":
    event_loop.run(main())
