"""Questions asked while a query runs go together in the next one: one round trip for many."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Batched"]

Q = TypeVar("Q")
A = TypeVar("A")


class Batched(Generic[Q, A]):
    """Asks ``run`` many questions at once, as the writer commits many appends at once: a
    question asked while a run is under way waits for it to end, then goes in the next run
    with all the others asked meanwhile (at most ``limit``). One run at a time, so a busy
    process sends fewer, larger queries; an idle one runs each question at once, in its
    asker's task. A run that fails is asked again one question at a time, so that each
    asker gets its own outcome."""

    def __init__(self, run: Callable[[list[Q]], Awaitable[list[A]]], limit: int = 256) -> None:
        self._run = run
        self._limit = limit
        self._waiting: list[tuple[Q, asyncio.Future[A]]] = []
        self._busy = False
        self._task: asyncio.Task[None] | None = None  # the run of what was asked meanwhile

    async def ask(self, question: Q) -> A:
        if self._busy:
            future: asyncio.Future[A] = asyncio.get_running_loop().create_future()
            self._waiting.append((question, future))
            return await future
        self._busy = True
        try:
            [answer] = await self._run([question])
        finally:
            if self._waiting:
                self._task = asyncio.create_task(self._drain())
            else:
                self._busy = False
        return answer

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self._limit], self._waiting[self._limit :]
                await self._answer(batch)
        finally:
            self._busy, self._task = False, None
            for _, future in self._waiting:  # only if this task was cancelled: nobody will answer them
                future.cancel()
            self._waiting = []

    async def _answer(self, batch: list[tuple[Q, asyncio.Future[A]]]) -> None:
        try:
            answers = await self._run([question for question, _ in batch])
        except Exception as e:
            if len(batch) > 1:  # one question's fault (text the database refuses) fails only its asker
                for one in batch:
                    await self._answer([one])
                return
            if not batch[0][1].done():
                batch[0][1].set_exception(e)
            return
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():  # its asker may have given up (a client gone)
                future.set_result(answer)
