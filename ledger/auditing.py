"""Audit a whole log held in a store, checking signatures on every core."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor

from ledger.checkpoint import Checkpoint
from ledger.errors import VerificationError
from ledger.note import parse_note
from ledger.store.base import LeafRow, Store
from ledger.terminal import ignore_interrupts
from ledger.verify import CheckedLeaf, LogAuditor, TrustedKey, check_leaves

__all__ = ["audit_leaves", "audit_store", "checkpoint_size"]

Progress = Callable[[int], None]


@functools.lru_cache(maxsize=16)
def checkpoint_size(note: bytes) -> int:
    """The tree size a signed checkpoint claims (not yet verified). Remembered for the last few
    notes: the service asks it of its latest checkpoint for every proof it serves."""
    return Checkpoint.from_body(parse_note(note).text).size


async def audit_store(
    store: Store,
    origin: str,
    keys: Sequence[TrustedKey],
    *,
    trusted: bytes | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Checkpoint | None:
    """Verify every event of ``store``, its latest checkpoint and, if given, a checkpoint saved earlier."""
    latest = await store.latest_checkpoint()
    return await audit_leaves(
        store.iter_leaves(), origin, keys, latest=latest, trusted=trusted, workers=workers, progress=progress
    )


async def audit_leaves(
    leaves: AsyncIterator[LeafRow],
    origin: str,
    keys: Sequence[TrustedKey],
    *,
    latest: bytes | None,
    trusted: bytes | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    chunk: int = 4000,
) -> Checkpoint | None:
    notes = [n for n in (latest, trusted) if n is not None]
    auditor = LogAuditor(origin, keys, roots_at=[checkpoint_size(n) for n in notes])
    workers = workers or os.cpu_count() or 1
    spawn = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=spawn, initializer=ignore_interrupts) if workers > 1 else None
    try:
        await _feed(auditor, _chunks(leaves, chunk), pool, workers, progress)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if latest is None:
        if auditor.size:
            raise VerificationError(f"the log holds {auditor.size} events but no signed checkpoint")
        if trusted is not None:
            saved = checkpoint_size(trusted)
            raise VerificationError(f"the log is empty, yet you saved its checkpoint of size {saved}: it was emptied"
                                    " or rolled back")  # fmt: skip
        return None
    checkpoint = auditor.check_checkpoint(latest, "latest checkpoint")
    if trusted is not None:
        auditor.check_checkpoint(trusted, "saved checkpoint")
        if checkpoint.size < checkpoint_size(trusted):
            raise VerificationError(f"the latest checkpoint (size {checkpoint.size}) is older than the one you saved"
                                    f" (size {checkpoint_size(trusted)}): the log was rolled back, or you are shown"
                                    " an old view of it")  # fmt: skip
    return checkpoint


async def _feed(
    auditor: LogAuditor,
    chunks: AsyncIterator[list[tuple[int, bytes]]],
    pool: Executor | None,
    workers: int,
    progress: Progress | None,
) -> None:
    loop = asyncio.get_running_loop()
    pending: deque[asyncio.Future[list[CheckedLeaf]]] = deque()
    async for chunk in chunks:
        pending.append(loop.run_in_executor(pool, check_leaves, auditor.origin, auditor.keys, chunk))
        while len(pending) > 2 * workers or (pending and pending[0].done()):
            _take(auditor, await pending.popleft(), progress)
    while pending:
        _take(auditor, await pending.popleft(), progress)


def _take(auditor: LogAuditor, checked: list[CheckedLeaf], progress: Progress | None) -> None:
    auditor.feed(checked)
    if progress is not None:
        progress(auditor.size)


async def _chunks(leaves: AsyncIterator[LeafRow], size: int) -> AsyncIterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    async for row in leaves:
        chunk.append((row.seq, row.leaf))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
