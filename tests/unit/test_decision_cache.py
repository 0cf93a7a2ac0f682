"""The decision cache: entries stamped with where the log stood, counts shared by workers."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from ledger.decision_cache import Commits, DecisionCache
from ledger.versions import VersionSet

QUESTION = ("TikTok", "cabinet-office", "ukgov")
NOTHING = VersionSet()


@dataclass
class Heard:
    """An append watch whose count the test sets (None: not listening)."""

    heard: int | None = 0

    async def close(self) -> None:
        self.heard = None


def cache(size: int = 10, watch: Heard | None = None, commits: Commits | None = None) -> DecisionCache:
    return DecisionCache(size, commits or Commits(), watch or Heard())


def test_an_entry_is_used_while_the_log_stands_where_it_was_read() -> None:
    decisions = cache()
    stamp = decisions.stamp()
    assert stamp is not None
    decisions.put(QUESTION, stamp, NOTHING)
    assert decisions.get(QUESTION, stamp) is NOTHING


def test_a_batch_committed_by_this_service_makes_every_entry_stale() -> None:
    commits = Commits()
    decisions = cache(commits=commits)
    stamp = decisions.stamp()
    assert stamp is not None
    decisions.put(QUESTION, stamp, NOTHING)
    commits.count()
    later = decisions.stamp()
    assert later != stamp
    assert later is not None
    assert decisions.get(QUESTION, later) is None


def test_an_append_heard_from_another_process_makes_every_entry_stale() -> None:
    watch = Heard(3)
    decisions = cache(watch=watch)
    stamp = decisions.stamp()
    assert stamp is not None
    decisions.put(QUESTION, stamp, NOTHING)
    watch.heard = 4
    later = decisions.stamp()
    assert later is not None
    assert decisions.get(QUESTION, later) is None


def test_nothing_counts_as_current_while_appends_cannot_be_heard() -> None:
    assert cache(watch=Heard(None)).stamp() is None


def test_the_least_recently_asked_question_goes_first() -> None:
    decisions = cache(size=2)
    stamp = decisions.stamp()
    assert stamp is not None
    first, second, third = QUESTION, ("TikTok", "home-office", None), ("WeChat", "cabinet-office", "ukgov")
    decisions.put(first, stamp, NOTHING)
    decisions.put(second, stamp, NOTHING)
    assert decisions.get(first, stamp) is NOTHING  # first is now the more recent
    decisions.put(third, stamp, NOTHING)
    assert decisions.get(second, stamp) is None
    assert decisions.get(first, stamp) is NOTHING
    assert decisions.get(third, stamp) is NOTHING


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
