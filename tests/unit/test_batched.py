"""Questions asked while a query runs go together in the next: one run for many."""

from __future__ import annotations

import asyncio

import pytest

from ledger.errors import Unavailable
from ledger.store.batched import Batched


class Doubler:
    """A run that answers each number with its double, keeping what each run was asked."""

    def __init__(self, fail: set[int] | None = None) -> None:
        self.runs: list[list[int]] = []
        self.fail = fail or set()
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, questions: list[int]) -> list[int]:
        self.runs.append(questions)
        await asyncio.sleep(0)  # as a query would: others may ask meanwhile
        await self.release.wait()
        if self.fail & set(questions):
            raise Unavailable("the database is not reachable")
        return [2 * q for q in questions]


async def test_a_question_asked_alone_is_run_at_once_on_its_own() -> None:
    run = Doubler()
    assert await Batched(run).ask(4) == 8
    assert run.runs == [[4]]


async def test_a_question_asked_alone_gets_its_error_directly() -> None:
    with pytest.raises(Unavailable, match="not reachable"):
        await Batched(Doubler(fail={4})).ask(4)


async def test_questions_asked_while_a_run_is_under_way_go_together_in_the_next() -> None:
    run = Doubler()
    run.release.clear()
    batched = Batched(run)
    first = asyncio.create_task(batched.ask(1))
    await asyncio.sleep(0)  # the first run starts, and waits
    rest = [asyncio.create_task(batched.ask(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    run.release.set()
    assert await asyncio.gather(first, *rest) == [2, 4, 6, 8]
    assert run.runs == [[1], [2, 3, 4]]


async def test_a_run_takes_at_most_its_limit_of_questions() -> None:
    run = Doubler()
    batched = Batched(run, limit=2)
    assert await asyncio.gather(*(batched.ask(n) for n in range(5))) == [0, 2, 4, 6, 8]
    assert run.runs == [[0], [1, 2], [3, 4]]


async def test_a_question_that_fails_its_run_fails_only_its_asker() -> None:
    run = Doubler(fail={2})
    batched = Batched(run)
    answers = await asyncio.gather(*(batched.ask(n) for n in (1, 2, 3)), return_exceptions=True)
    assert [a if isinstance(a, int) else type(a) for a in answers] == [2, Unavailable, 6]
    assert run.runs == [[1], [2, 3], [2], [3]]  # the run of 2 and 3 failed, then each was asked alone


async def test_when_every_question_fails_every_asker_gets_the_error_and_the_next_run_still_goes() -> None:
    run = Doubler(fail={1, 2, 3})
    batched = Batched(run)
    answers = await asyncio.gather(*(batched.ask(n) for n in (1, 2, 3)), return_exceptions=True)
    assert [type(a) for a in answers] == [Unavailable] * 3
    assert await batched.ask(5) == 10


async def test_an_asker_who_gives_up_leaves_the_others_answered() -> None:
    run = Doubler()
    run.release.clear()
    batched = Batched(run)
    leaving, staying = asyncio.create_task(batched.ask(1)), asyncio.create_task(batched.ask(2))
    await asyncio.sleep(0)
    leaving.cancel()
    run.release.set()
    assert await staying == 4
    with pytest.raises(asyncio.CancelledError):
        await leaving
