"""Stored projections on PostgreSQL: full rebuild speed, as-of and current decision latency.

    python -m bench.projections [--events 1000000] [--queries 2000] [--processes N] [--rebuilds 3]
                                [--pause 90] [--url URL]

Builds a log of N valid policy and exemption events (bench/story_mix.py: about 2% bans,
5% reviews, amendments and lifts, half grants, the rest renewals, amendments and
revocations of exemptions; recorded times spread over two years) through the writer,
without projections. Then measures, in this process:

- the full rebuild, once the new log is vacuumed and analysed as autovacuum would have it:
  replay the log from seq 0 into new projections with ``--processes`` processes sharing
  out the streams, ``--rebuilds`` times, every one printed and their median, each after one
  core's Ed25519 sign rate (the machine's speed of the moment); then in this process alone
  (events/s). One rebuild and the next differ by 10% or more here. The machine is left idle
  for ``--pause`` seconds after building the log: here, rebuilds in the minute or so after
  the minutes of building cost their processes 10-25% more CPU time for the same work
  (40,000-48,000 events/s, against 51,000-61,000 later or after the pause);
- as-of decisions for a past time: ``service.decide(as_of=T)`` for random T in the log's
  span and random (app, organisation, account), half of them a real grantee (p50/p99);
- current decisions: ``service.decide()`` for as many other questions of that kind (p50/p99),
  then the same questions asked again, their rows now in PostgreSQL's buffers.

The new projections are vacuumed and analysed first, and 100 other questions warm the
code and the prepared statements. Each query is one awaited call through LedgerService
to the store (no read cache), one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg

from bench.common import DEFAULT_URL, ORIGIN, percentile, scratch_store, sign_rate, write_out
from bench.story_mix import APPS, SPAN, START, Mix
from ledger import event_loop
from ledger.logs import configure_logging
from ledger.projections import Decision
from ledger.projector import Rebuilt, VersionProjector, rebuild, rebuild_processes
from ledger.service import LedgerService
from ledger.signing import Signer
from ledger.store.postgres import PostgresStore
from ledger.writer import Writer

Question = tuple[str, str, str, str]  # app, organisation, account, device


async def build(store: PostgresStore, mix: Mix, chunk: int = 20_000, signer: Signer | None = None) -> float:
    """Append the whole mix through the writer; returns events/s."""
    clock = [START]
    writer = Writer(store, signer or Signer.generate(ORIGIN), max_batch=5000, clock=lambda: clock[0])
    await writer.start()
    started, drafts, done = time.perf_counter(), mix.drafts(), 0
    while done < mix.total:
        size = min(chunk, mix.total - done)
        clock[0] = mix.moment(done)
        await asyncio.gather(*(writer.append(next(drafts)) for _ in range(size)))
        done += size
        print(f"\r  built {done:,} events", end="", flush=True)
    await writer.close()
    print()
    return mix.total / (time.perf_counter() - started)


def questions(mix: Mix, count: int, rng: random.Random) -> list[Question]:
    """Half asked by real grantees about their covered device, half random (app, organisation, account)."""
    asked = []
    for i in range(count):
        if i % 2 == 0:
            asked.append(rng.choice(mix.grantees))
        else:
            org, account = f"org-{rng.randrange(300):03d}", f"acct-{rng.randrange(20_000):05d}"
            asked.append((f"app-{rng.randrange(APPS):03d}", org, account, "D-1"))
    return asked


async def latencies(ask: Callable[[Question, int], Awaitable[Decision]], asked: list[Question]) -> tuple[float, float]:
    """p50 and p99 in ms of ``ask`` over the questions, one at a time."""
    times = []
    for i, question in enumerate(asked):
        start = time.perf_counter()
        await ask(question, i)
        times.append(time.perf_counter() - start)
    return percentile(times, 50) * 1000, percentile(times, 99) * 1000


async def rebuilds(store: PostgresStore, processes: int, times: int, settled: Settle) -> list[Rebuilt]:
    """``times`` full rebuilds, each printed beside the sign rate measured just before it."""
    done = []
    for i in range(times):
        signs = sign_rate()
        rebuilt = await rebuild(store, processes=processes)
        print(
            f"full rebuild {i + 1} of {times}, {rebuilt.events:,} events, {processes} processes:"
            f" {rebuilt.rate:9,.0f} events/s  ({rebuilt.seconds:.1f} s; one core signed {signs:,.0f}/s just before:"
            f" {rebuilt.rate / signs:.2f}x)"
        )
        done.append(rebuilt)
        await settled("policy_versions", "exemption_versions")  # the next rebuild drops these: written out
    return done


async def measure(store: PostgresStore, mix: Mix, count: int, processes: int, times: int, settled: Settle) -> None:
    rng = random.Random(11)
    writer = Writer(store, Signer.generate(ORIGIN), projectors=[VersionProjector()])
    service = LedgerService(store, writer, clock=lambda: START + SPAN)  # "now": the end of the story
    asked, now_asked, warm = questions(mix, count, rng), questions(mix, count, rng), questions(mix, 100, rng)
    past: list[datetime] = [START + SPAN * rng.random() for _ in asked]

    async def as_of(q: Question, i: int) -> Decision:
        return await service.decide(app=q[0], organisation=q[1], account=q[2], device=q[3], as_of=past[i])

    async def current(q: Question, i: int) -> Decision:
        return await service.decide(app=q[0], organisation=q[1], account=q[2], device=q[3])

    rebuilt = statistics.median(r.rate for r in await rebuilds(store, processes, times, settled))
    alone = await rebuild(store)
    await settled("policy_versions", "exemption_versions", "disclosures")  # as autovacuum would after a rebuild
    await latencies(as_of, warm)  # other questions: the code and the statements warm, not the rows asked for
    await latencies(current, warm)
    past_p50, past_p99 = await latencies(as_of, asked)
    first_p50, first_p99 = await latencies(current, now_asked)  # not the as-of questions: none asked before
    again_p50, again_p99 = await latencies(current, now_asked)
    allowed = [(await current(q, 0)).verdict for q in now_asked[:200]].count("allowed")
    print(f"full rebuild, {processes} processes, median of {times}: {rebuilt:9,.0f} events/s")
    print(
        f"  the same in this process alone:            {alone.rate:9,.0f} events/s  ({alone.seconds:.1f} s)"
        f"  -> the median is {rebuilt / alone.rate:.2f}x"
    )
    print(f"as-of decision, past time, {count:,} queries: p50 {past_p50:.2f} ms, p99 {past_p99:.2f} ms")
    print(f"current decision, {count:,} queries:        p50 {first_p50:.2f} ms, p99 {first_p99:.2f} ms")
    print(f"  the same questions asked again:          p50 {again_p50:.2f} ms, p99 {again_p99:.2f} ms"
          "  (their rows now in PostgreSQL's buffers)")  # fmt: skip
    print(f"  ({allowed} of the first 200 current answers were 'allowed' by an exemption)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--processes", type=int, default=rebuild_processes(), help="rebuild processes (CPUs + 1)")
    parser.add_argument("--rebuilds", type=int, default=3, help="full rebuilds with --processes, for their median")
    parser.add_argument("--pause", type=float, default=90.0, help="idle seconds between building and measuring")
    args = parser.parse_args()
    configure_logging("warning")
    mix = Mix(args.events)
    async with scratch_store(args.url) as (store, schema):
        built = await build(store, mix)
        print(f"log built through the writer (no projections): {built:9,.0f} events/s")
        await settle(args.url, schema, "events", "tree_nodes")
        print(f"  the machine left idle for {args.pause:.0f} s after building the log")
        await asyncio.sleep(args.pause)
        settled = functools.partial(settle, args.url, schema)
        await measure(store, mix, args.queries, args.processes, args.rebuilds, settled)


Settle = Callable[..., Awaitable[None]]


async def settle(url: str, schema: str, *tables: str) -> None:
    """Let ``tables`` settle as tables that have stood a while would have: vacuumed and
    analysed (as autovacuum does), their pages written out (as the checkpointer does).
    Otherwise the first reader also pays for setting every new row's hint bits and writing
    out the pages it dirtied, and races the checkpointer writing out the whole log."""
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        await conn.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")
        await write_out(conn, "what is measured next")
    finally:
        await conn.close()


if __name__ == "__main__":
    event_loop.run(main())
