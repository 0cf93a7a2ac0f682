"""Shared set-up for the benchmarks: a throwaway PostgreSQL schema, and sample events."""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ledger.events import Draft
from ledger.signing import Signer
from ledger.store.postgres import PostgresStore

DEFAULT_URL = os.environ.get("LEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ORIGIN = "bench.policy-ledger.example/device-policy"


@asynccontextmanager
async def scratch_store(url: str, pool_size: int = 10) -> AsyncIterator[tuple[PostgresStore, str]]:
    """A migrated store in a fresh schema, dropped afterwards; what earlier runs left dirty
    is written out first, so that one measurement does not pay for another's writes."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    store = await PostgresStore.open(url, max_size=pool_size, server_settings={"search_path": schema})
    try:
        await store.migrate()
        await write_out(admin, "this run")
        yield store, schema
    finally:
        await store.close()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


async def write_out(conn: asyncpg.Connection, before: str) -> None:
    """CHECKPOINT: write out the pages earlier work left dirty, so that the checkpointer
    does not write them during what is measured next (needs a role that may CHECKPOINT)."""
    try:
        await conn.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:
        print(f"  (no CHECKPOINT: this role may not; {before} may race the checkpointer)")


def sample_draft(i: int) -> Draft:
    """An event of realistic size (about 700 bytes as a leaf)."""
    data = {
        "policy_id": f"POL-{i % 97}",
        "grantee": {"organisation": "Cabinet Office", "unit": "Government Digital Service", "account": "ukgov"},
        "purpose": "Publishing public service information on the official government account",
        "mitigations": {"_sd": "q0c8n3kYx9Qx6m3o7v1m0hZr2pZ7Qx1K1dM4d8u0b3A"},
        "case_ref": f"SEC-2025-{i:06d}",
        "valid_from": "2025-02-07T00:00:00Z",
        "expires_at": "2026-02-07T00:00:00Z",
    }
    return Draft(f"exemption/EX-{i}", "exemption.granted", data, {"id": "sec-officer-1", "role": "security-officer"})


def sign_rate(seconds: float = 1.0) -> float:
    """Ed25519 signatures per second on one core, of an event-sized message."""
    signer, message, count = Signer.generate(ORIGIN), b"x" * 700, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            signer.sign(message)
        count += 200
    return count / (time.perf_counter() - start)


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=1000)[int(p * 10) - 1] if len(values) > 1 else values[0]


def cpu_ticks() -> tuple[int, int] | None:
    """The machine's CPU time so far, in ticks: all of it, and the part a hypervisor took for
    other guests (steal) — ``/proc/stat``'s first line; None where there is none."""
    fields = _machine_ticks()
    if not fields:
        return None
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0


def _machine_ticks() -> list[int]:
    """The fields of ``/proc/stat``'s first line (user, nice, system, idle, iowait, irq,
    softirq, steal, ...), in ticks; [] where there is none."""
    try:
        with open("/proc/stat") as stat:
            return [int(f) for f in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return []


def stolen_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> str:
    """What share of the machine's CPU time a hypervisor took between two :func:`cpu_ticks`:
    a run on a machine that lost much of it reads low, whatever the code."""
    if before is None or after is None or after[0] <= before[0]:
        return "machine: CPU time taken by the hypervisor (steal) not known here"
    share = (after[1] - before[1]) / (after[0] - before[0])
    return f"machine: {share:.0%} of the CPU time was taken by the hypervisor for others (steal) during the run"


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds used so far: by the processes measured, by the PostgreSQL server's processes
    on this machine, and by the whole machine (busy, and all of its time, busy or idle)."""

    processes: float
    postgres: float
    busy: float
    total: float

    def per(self, later: CpuUse, count: float, name: str) -> str:
        """What each of ``count`` things done between this sample and ``later`` cost, in CPU."""
        used = [later.processes - self.processes, later.postgres - self.postgres, later.busy - self.busy]
        each = [f"{u / count * 1e6:,.0f} us" for u in used]
        busy = used[2] / (later.total - self.total) if later.total > self.total else 0.0
        return f"CPU each: {name} {each[0]}, PostgreSQL {each[1]}, whole machine {each[2]} ({busy:.0%} busy)"


def cpu_use(pids: Iterable[int]) -> CpuUse:
    """A :class:`CpuUse` sample for ``pids`` (Linux ``/proc``; zeros where it is missing). A
    process that ends between two samples drops out of the second: sample ones that live on."""
    tick = os.sysconf("SC_CLK_TCK")
    processes = sum(_process_ticks(pid) for pid in pids) / tick
    postgres = sum(_process_ticks(pid) for pid in _pids_named("postgres")) / tick
    fields = _machine_ticks()[:7] or [0] * 7  # up to softirq: time the hypervisor took (steal) is not ours
    idle = fields[3] + fields[4]  # idle, and waiting for I/O
    return CpuUse(processes, postgres, (sum(fields) - idle) / tick, sum(fields) / tick)


def process_tree(pid: int) -> list[int]:
    """``pid`` and the processes it started, and theirs (the workers a service forks)."""
    parents = {}
    for path in Path("/proc").glob("[0-9]*"):
        stat = _stat(int(path.name))
        if stat:
            parents[int(path.name)] = int(stat[1])
    tree, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree, grew = tree | more, bool(more)
    return sorted(tree)


def _pids_named(name: str) -> list[int]:
    found = []
    for path in Path("/proc").glob("[0-9]*"):
        try:
            if (path / "comm").read_text().strip() == name:
                found.append(int(path.name))
        except OSError:
            continue
    return found


def _process_ticks(pid: int) -> int:
    stat = _stat(pid)
    return int(stat[11]) + int(stat[12]) if stat else 0  # utime and stime


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first); [] for none."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []
