"""Current decisions without a database read, and what keeps them current.

A decision "now" needs the open versions of one app's policies and one account's
exemptions; :class:`DecisionCache` keeps those (never the decision itself: expiry is a
matter of time, so each answer is still worked out at the moment it is asked). An entry
is used only while the log stands where it stood when the entry was read, which two
counts tell:

- :class:`Commits`: batches committed by this service's own writers, counted in memory
  that its worker processes share. A writer counts its batch before it acknowledges it,
  so a read after a write sees the write, whichever worker answers it.
- the store's :class:`~ledger.store.base.AppendWatch`: appends by any process, as the
  database tells of them (PostgreSQL LISTEN/NOTIFY). An append made through another
  service or the CLI is seen once its notice arrives, normally within a millisecond.
  While the watch is not listening, nothing is cached or served from the cache.

The stamp is read before the database is, so an append that lands during the read leaves
an entry that is never used. No I/O here.
"""

from __future__ import annotations

import mmap
import struct
from collections import OrderedDict

from ledger.store.base import AppendWatch
from ledger.versions import VersionSet

__all__ = ["Commits", "DecisionCache", "Question"]

Question = tuple[str, str, str | None]  # app, organisation, account, as asked
Stamp = tuple[int, int]

_SLOT = struct.Struct("=q")


class Commits:
    """Batches committed by the writers of up to ``processes`` processes, one slot each.

    The slots live in shared anonymous memory, so a forked worker shares them. Each
    process writes only its own slot, so no lock is needed; the total grows with any.
    """

    def __init__(self, processes: int = 1) -> None:
        self._slots = mmap.mmap(-1, _SLOT.size * processes)
        self._processes = processes
        self._mine = 0

    def claim(self, index: int) -> None:
        """Count this process's batches in slot ``index`` (a forked worker's number)."""
        if not 0 <= index < self._processes:
            raise ValueError(f"slot {index} is not one of {self._processes}")
        self._mine = index

    def count(self) -> None:
        offset = _SLOT.size * self._mine
        _SLOT.pack_into(self._slots, offset, _SLOT.unpack_from(self._slots, offset)[0] + 1)

    @property
    def total(self) -> int:
        return sum(struct.unpack_from(f"={self._processes}q", self._slots))


class DecisionCache:
    """The versions behind current decisions, for up to ``size`` questions (least recent go first)."""

    def __init__(self, size: int, commits: Commits, watch: AppendWatch) -> None:
        self._size = size
        self._commits = commits
        self._watch = watch
        self._entries: OrderedDict[Question, tuple[Stamp, VersionSet]] = OrderedDict()

    def stamp(self) -> Stamp | None:
        """Where the log stands now, as far as can be told; None when it cannot be."""
        heard = self._watch.heard
        return None if heard is None else (heard, self._commits.total)

    def get(self, question: Question, stamp: Stamp) -> VersionSet | None:
        entry = self._entries.get(question)
        if entry is None or entry[0] != stamp:
            return None
        self._entries.move_to_end(question)
        return entry[1]

    def put(self, question: Question, stamp: Stamp, versions: VersionSet) -> None:
        self._entries[question] = (stamp, versions)
        self._entries.move_to_end(question)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
