"""A rebuild of the stored projections shared out among processes (PostgreSQL).

The streams are shared out by a hash of their name, so each process folds whole streams.
The tables the rebuild fills are made first and committed, so that each process can load
its share over its own connection; the caller, which holds the log's lock throughout,
then indexes them and puts them in place of the old ones in its own transaction
(:meth:`~ledger.store.postgres_projections.PostgresProjectionWrites.finish_rebuild`).
Should it fail, the old tables stay, and the next rebuild starts its tables afresh.

The processes are spawned (a fresh interpreter each, never a fork of a process with a
running event loop), so a script that calls this must guard its own work with
``if __name__ == "__main__":``, as multiprocessing requires.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import asyncpg

from ledger import event_loop
from ledger.errors import VerificationError
from ledger.projector import decoded_leaf, fold, no_cycle_collection
from ledger.store.postgres_projections import Connection, PostgresProjectionWrites
from ledger.terminal import ignore_interrupts

__all__ = ["fold_in_parts"]

Settings = dict[str, str] | None

_PART = """
SELECT seq, leaf FROM events
WHERE seq >= $1 AND seq < $2 AND (hashtext(stream) & 2147483647) % $3 = $4
ORDER BY seq
"""


async def fold_in_parts(conn: Connection, url: str, settings: Settings, size: int, parts: int,
                        page: int) -> None:  # fmt: skip
    """Fold the first ``size`` events into new version tables, with ``parts`` processes."""
    await _Loader(conn).make_rebuild_tables()
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(parts, mp_context=get_context("spawn"), initializer=ignore_interrupts) as pool:
        folded = await asyncio.gather(
            *(loop.run_in_executor(pool, fold_part, url, settings, size, part, parts, page) for part in range(parts))
        )
    if sum(folded) != size:
        raise VerificationError(f"the log has a gap: {sum(folded)} events below seq {size}", seq=size - 1)


def fold_part(url: str, settings: Settings, size: int, part: int, parts: int, page: int) -> int:
    """In a process of its own: fold share ``part`` of ``parts``; the events it folded."""
    with no_cycle_collection():
        return event_loop.run(_fold_part(url, settings, size, part, parts, page))


async def _fold_part(url: str, settings: Settings, size: int, part: int, parts: int, page: int) -> int:
    conn = await asyncpg.connect(url, server_settings=settings)
    try:
        return await fold(_pages(conn, size, part, parts, page), _Loader(conn).load_versions)
    finally:
        await conn.close()


async def _pages(conn: asyncpg.Connection, size: int, part: int, parts: int,
                 page: int) -> AsyncIterator[list[Mapping[str, Any]]]:  # fmt: skip
    step = page * parts  # seqs per read, so that each read brings about ``page`` events
    for start in range(0, size, step):
        rows = await conn.fetch(_PART, start, min(start + step, size), parts, part)
        yield [decoded_leaf(row[0], row[1]) for row in rows]


class _Loader(PostgresProjectionWrites):
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
