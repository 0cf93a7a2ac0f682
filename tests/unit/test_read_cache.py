"""Reads remembered while the log stands still; counts of commits shared by workers."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import pytest

from ledger.read_cache import Commits, LogStamps, ReadCache, TokenStamps

KEY = ("TikTok", "cabinet-office", "ukgov")


@dataclass
class Heard:
    """An append watch whose count the test sets (None: not listening)."""

    heard: int | None = 0
    tokens_heard: int | None = 0

    async def close(self) -> None:
        self.heard = self.tokens_heard = None


class Reads:
    """A load that counts how often it ran and answers with that count."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> int:
        self.count += 1
        return self.count


def cache(size: int = 10, watch: Heard | None = None, commits: Commits | None = None) -> ReadCache[object, int]:
    return ReadCache(size, LogStamps(commits or Commits(), watch or Heard()))


async def test_a_read_is_remembered_while_the_log_stands_where_it_was_read() -> None:
    reads, remembered = Reads(), cache()
    assert [await remembered.read(KEY, reads) for _ in range(3)] == [1, 1, 1]


async def test_a_batch_committed_by_this_service_makes_every_read_stale() -> None:
    reads, commits = Reads(), Commits()
    remembered = cache(commits=commits)
    await remembered.read(KEY, reads)
    commits.count()
    assert await remembered.read(KEY, reads) == 2


async def test_an_append_heard_from_another_process_makes_every_read_stale() -> None:
    reads, watch = Reads(), Heard(3)
    remembered = cache(watch=watch)
    await remembered.read(KEY, reads)
    watch.heard = 4
    assert await remembered.read(KEY, reads) == 2


async def test_nothing_is_remembered_while_appends_cannot_be_heard() -> None:
    reads = Reads()
    remembered = cache(watch=Heard(None))
    assert [await remembered.read(KEY, reads) for _ in range(2)] == [1, 2]


async def test_nothing_is_remembered_without_stamps() -> None:
    reads, remembered = Reads(), ReadCache[object, int](10, None)
    assert [await remembered.read(KEY, reads) for _ in range(2)] == [1, 2]


async def test_a_read_that_fails_is_not_remembered() -> None:
    async def failing() -> int:
        raise LookupError("no checkpoint yet")

    reads, remembered = Reads(), cache()
    with pytest.raises(LookupError):
        await remembered.read(KEY, failing)
    assert await remembered.read(KEY, reads) == 1


async def test_the_least_recently_used_read_goes_first() -> None:
    remembered, first, second, third = cache(size=2), Reads(), Reads(), Reads()
    await remembered.read("first", first)
    await remembered.read("second", second)
    await remembered.read("first", first)  # first is now the more recent
    await remembered.read("third", third)
    assert (await remembered.read("first", first), await remembered.read("second", second)) == (1, 2)


async def test_a_token_is_remembered_until_a_token_change_is_heard_whatever_is_appended() -> None:
    reads, watch = Reads(), Heard(3, 7)
    tokens = ReadCache[object, int](10, TokenStamps(watch))
    await tokens.read("hash", reads)
    watch.heard = 4
    assert await tokens.read("hash", reads) == 1
    watch.tokens_heard = 8
    assert await tokens.read("hash", reads) == 2


async def test_no_token_is_remembered_while_token_changes_cannot_be_heard() -> None:
    reads, tokens = Reads(), ReadCache[object, int](10, TokenStamps(Heard(3, None)))
    assert [await tokens.read("hash", reads) for _ in range(2)] == [1, 2]


def test_commits_counted_in_a_forked_worker_are_seen_by_the_first_process() -> None:
    commits = Commits(3)
    commits.count()
    pid = os.fork()
    if pid == 0:  # the worker: counts two batches in its own slot, then exits
        commits.claim(2)
        commits.count()
        commits.count()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert commits.total == 3


@pytest.mark.parametrize("index", [-1, 3])
def test_a_slot_outside_the_processes_is_refused(index: int) -> None:
    with pytest.raises(ValueError, match=f"slot {index} is not one of 3"):
        Commits(3).claim(index)


def test_a_count_is_never_read_half_written() -> None:
    commits = Commits(2)
    pid = os.fork()
    if pid == 0:  # the worker counts as fast as it can for half a second
        commits.claim(1)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            for _ in range(1000):
                commits.count()
        os._exit(0)
    totals = []
    while not os.waitpid(pid, os.WNOHANG)[0]:
        totals.append(commits.total)
    assert totals == sorted(totals)
    assert totals[-1] > 0
