"""Reads the service remembers while the log stands still, and what tells it has moved.

Current decisions need the open versions of one app's policies and one account's
exemptions, and proofs need the latest checkpoint; :class:`ReadCache` keeps such reads
(for a decision, never the answer itself: expiry is a matter of time, so each answer is
still worked out at the moment it is asked). A remembered read is used only while the
log stands where it stood when it was read, which :class:`LogStamps` tells from two counts:

- :class:`Commits`: batches committed by this service's own writers, counted in memory
  that its worker processes share. A writer counts its batch before it acknowledges it,
  so a read after a write sees the write, whichever worker answers it.
- the store's :class:`~ledger.store.base.AppendWatch`: appends by any process, as the
  database tells of them (PostgreSQL LISTEN/NOTIFY). An append made through another
  service or the CLI is seen once its notice arrives, normally within a millisecond.
  While the watch is not listening, nothing is remembered or served from memory.

The stamp is taken before the database is read, so an append that lands during the read
leaves an entry that is never used. The tokens looked up by bearer are remembered the same
way, by :class:`TokenStamps`: while no token has been created or revoked, as the watch
hears from the database. No I/O here beyond the ``load`` a caller hands in.
"""

from __future__ import annotations

import ctypes
import mmap
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, Protocol, TypeVar

from ledger.store.base import AppendWatch

__all__ = ["Commits", "LogStamps", "ReadCache", "Stamps", "TokenStamps"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Stamp = tuple[int, int]


class Commits:
    """Batches committed by the writers of up to ``processes`` processes, one slot each.

    The slots live in shared anonymous memory, so a forked worker shares them. Each
    process writes only its own slot, an aligned 64-bit integer stored whole, so no lock is
    needed and no reader sees half a count; the total grows with any.
    """

    def __init__(self, processes: int = 1) -> None:
        self._memory = mmap.mmap(-1, ctypes.sizeof(ctypes.c_int64) * processes)
        self._slots = (ctypes.c_int64 * processes).from_buffer(self._memory)
        self._mine = 0

    def claim(self, index: int) -> None:
        """Count this process's batches in slot ``index`` (a forked worker's number)."""
        if not 0 <= index < len(self._slots):
            raise ValueError(f"slot {index} is not one of {len(self._slots)}")
        self._mine = index

    def count(self) -> None:
        self._slots[self._mine] += 1

    @property
    def total(self) -> int:
        return sum(self._slots)


class Stamps(Protocol):
    def now(self) -> Stamp | None:
        """A value that differs once what is remembered may be stale; None when that cannot be told."""
        ...


class LogStamps:
    """Where the log stands, as far as this process can tell."""

    def __init__(self, commits: Commits, watch: AppendWatch) -> None:
        self._commits = commits
        self._watch = watch

    def now(self) -> Stamp | None:
        """A value that differs once the log has grown; None when that cannot be told."""
        heard = self._watch.heard
        return None if heard is None else (heard, self._commits.total)


class TokenStamps:
    """Where the tokens stand: changed only by the command line, so heard of like an append
    made by another process."""

    def __init__(self, watch: AppendWatch) -> None:
        self._watch = watch

    def now(self) -> Stamp | None:
        heard = self._watch.tokens_heard
        return None if heard is None else (heard, 0)


class ReadCache(Generic[K, V]):
    """Up to ``size`` reads (the least recently used go first); every read is fresh without ``stamps``."""

    def __init__(self, size: int, stamps: Stamps | None) -> None:
        self._size = size
        self._stamps = stamps
        self._entries: OrderedDict[K, tuple[Stamp, V]] = OrderedDict()

    async def read(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """What ``load`` gives for ``key``, remembered while the log stands still."""
        stamp = None if self._stamps is None else self._stamps.now()  # before the read
        if stamp is None:
            return await load()
        entry = self._entries.get(key)
        if entry is not None and entry[0] == stamp:
            self._entries.move_to_end(key)
            return entry[1]
        value = await load()
        self._entries[key] = (stamp, value)
        self._entries.move_to_end(key)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return value
