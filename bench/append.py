"""Append throughput and latency into PostgreSQL, beside raw asyncpg inserts and the sign rate.

    python -m bench.append [--events 50000] [--concurrency 64] [--runs 3] [--rate 5000] [--url URL]

Prints: signed events/s with C concurrent appenders through the writer (group commit), the
median of several runs (each into a new log: a machine's rate drifts from run to run), and
the CPU time each event cost in that run this process (appenders and writer), PostgreSQL and
the whole machine; p50/p99 append latency at an offered rate; raw asyncpg one-row INSERT
transactions/s at the same concurrency; the single-core Ed25519 sign rate; the share of the
machine's CPU time a hypervisor took meanwhile (steal), which lowers every figure; and the
event loop it ran on, the service's (``ledger.event_loop``: uvloop where installed).
PostgreSQL keeps fsync on.
The writer seals each batch ahead of the lock while the one before commits, so C appenders
make batches of about C/2: one committing, one being signed. It keeps no projection inline
(the service's writer does), so each batch goes to PostgreSQL in one statement, one round
trip (``Store.append_at``).

The process's cycle collector is set as a serving process sets it once it serves
(``api.serving.settle_collector``): else its first full passes over the start-up objects,
some 27 ms each here, stall the batches they fall in, and the p99 of the latency run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import asyncpg

from api.serving import settle_collector
from bench.common import (
    DEFAULT_URL,
    ORIGIN,
    cpu_ticks,
    cpu_use,
    percentile,
    sample_draft,
    scratch_store,
    sign_rate,
    stolen_share,
)
from ledger import event_loop
from ledger.logs import configure_logging
from ledger.signing import Signer
from ledger.writer import Writer


async def throughput(url: str, events: int, concurrency: int) -> tuple[float, float, str]:
    async with scratch_store(url) as (store, _):
        writer = Writer(store, Signer.generate(ORIGIN))
        await writer.start()
        counter = iter(range(events))

        async def appender() -> None:
            for i in counter:
                await writer.append(sample_draft(i))

        start, before = time.perf_counter(), cpu_use([os.getpid()])
        await asyncio.gather(*(appender() for _ in range(concurrency)))
        elapsed, used = time.perf_counter() - start, before.per(cpu_use([os.getpid()]), events, "this process")
        await writer.close()
        return events / elapsed, events / max(writer.batches, 1), used


async def latency(url: str, rate: int, seconds: float) -> tuple[float, float, float]:
    async with scratch_store(url) as (store, _):
        writer = Writer(store, Signer.generate(ORIGIN))
        await writer.start()
        latencies: list[float] = []

        async def one(i: int) -> None:
            start = time.perf_counter()
            await writer.append(sample_draft(i))
            latencies.append(time.perf_counter() - start)

        running: set[asyncio.Task[None]] = set()  # as a server, forget each append once answered
        begin, total = time.perf_counter(), int(rate * seconds)
        for i in range(total):  # open loop: offer appends on a fixed schedule
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(i))
            running.add(task)
            task.add_done_callback(running.discard)
        await asyncio.gather(*running)
        achieved = total / (time.perf_counter() - begin)
        await writer.close()
        return achieved, percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000


async def raw_inserts(url: str, events: int, concurrency: int) -> float:
    async with scratch_store(url, pool_size=concurrency) as (_, schema):
        pool = await asyncpg.create_pool(
            url, min_size=concurrency, max_size=concurrency, server_settings={"search_path": schema}
        )
        await pool.execute("CREATE TABLE raw (id bigserial PRIMARY KEY, stream text, body bytea)")
        counter, body = iter(range(events)), b"x" * 700

        async def inserter() -> None:
            for i in counter:
                await pool.execute("INSERT INTO raw (stream, body) VALUES ($1, $2)", f"s/{i}", body)

        start = time.perf_counter()
        await asyncio.gather(*(inserter() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        await pool.close()
        return events / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3, help="throughput runs, of which the median is reported")
    parser.add_argument("--rate", type=int, default=5_000, help="offered appends/s for the latency run")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the latency run")
    args = parser.parse_args()
    configure_logging("warning")
    settle_collector()  # as `policy-ledger serve` does

    ticks, signs = cpu_ticks(), sign_rate()
    runs = sorted([await throughput(args.url, args.events, args.concurrency) for _ in range(args.runs)])
    rate, per_batch, used = runs[len(runs) // 2]  # the median run (by rate)
    raw = await raw_inserts(args.url, min(args.events, 20_000), args.concurrency)
    achieved, p50, p99 = await latency(args.url, args.rate, args.seconds)
    print(f"signed appends, {args.concurrency} appenders:  {rate:9,.0f} events/s  ({per_batch:.1f} events/batch)")
    print(f"    median of {len(runs)} runs: {' / '.join(f'{r[0]:,.0f}' for r in runs)} events/s")
    print(f"    {used}")
    print(
        f"raw asyncpg 1-row INSERT txns, {args.concurrency} conns: {raw:9,.0f} txns/s"
        f"    -> appends are {rate / raw:.1f}x"
    )
    print(f"Ed25519 sign rate, one core:            {signs:9,.0f} signs/s   -> appends are {rate / signs:.2f}x")
    print(f"latency at {args.rate:,}/s offered ({achieved:,.0f}/s done): p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    print(stolen_share(ticks, cpu_ticks()))
    print(f"event loop: {event_loop.loop_name()}")


if __name__ == "__main__":
    event_loop.run(main())
