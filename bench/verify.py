"""Whole-log verification speed: every signature, link, leaf and the checkpoint.

    python -m bench.verify [--events 1000000] [--url URL]

Builds a log of N signed events in a scratch PostgreSQL schema (through the writer, in
large batches), then verifies all of it with one process per core, and prints beside it
the single-core rate measured on a slice of the same log in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from bench.common import DEFAULT_URL, ORIGIN, sample_draft, scratch_store
from ledger import event_loop
from ledger.auditing import audit_store
from ledger.logs import configure_logging
from ledger.signing import Signer
from ledger.store.postgres import PostgresStore
from ledger.verify import LogAuditor, TrustedKey, check_leaves
from ledger.writer import Writer


async def build(store: PostgresStore, signer: Signer, events: int) -> float:
    writer = Writer(store, signer, max_batch=5000)
    await writer.start()
    start, step = time.perf_counter(), 20_000
    for first in range(0, events, step):
        await asyncio.gather(*(writer.append(sample_draft(i)) for i in range(first, min(first + step, events))))
        print(f"\r  built {min(first + step, events):,} events", end="", flush=True)
    await writer.close()
    print()
    return events / (time.perf_counter() - start)


async def verify_all(store: PostgresStore, signer: Signer, workers: int) -> tuple[float, int]:
    start = time.perf_counter()
    checkpoint = await audit_store(store, ORIGIN, [TrustedKey(signer.verifier)], workers=workers)
    assert checkpoint is not None
    return checkpoint.size / (time.perf_counter() - start), checkpoint.size


async def verify_slice(store: PostgresStore, signer: Signer, count: int) -> float:
    """Single-core rate: the same checks, in this process, on the first ``count`` events."""
    keys = [TrustedKey(signer.verifier)]
    rows = await store.read_leaves(0, count)
    start = time.perf_counter()
    auditor = LogAuditor(ORIGIN, keys)
    auditor.feed(check_leaves(ORIGIN, keys, [(r.seq, r.leaf) for r in rows]))
    return count / (time.perf_counter() - start)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    configure_logging("warning")
    signer = Signer.generate(ORIGIN)
    async with scratch_store(args.url) as (store, _):
        built = await build(store, signer, args.events)
        single = await verify_slice(store, signer, min(args.events, 50_000))
        rate, size = await verify_all(store, signer, args.workers)
    print(f"log built through the writer:          {built:9,.0f} events/s")
    print(f"whole-log verify, {args.workers} processes, {size:,} events: {rate:9,.0f} events/s")
    print(
        f"single-core verify, same checks:        {single:9,.0f} events/s"
        f"  -> {rate / single:.2f}x on {args.workers} cores"
    )


if __name__ == "__main__":
    event_loop.run(main())
