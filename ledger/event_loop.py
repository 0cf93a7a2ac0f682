"""The event loop every command, worker and benchmark runs on.

uvloop's (libuv, by the authors of asyncpg) where it is installed, as it is on Linux and
macOS: the writer's batches, the database's replies and HTTP requests each cost this
process less CPU time on it. asyncio's own elsewhere (Windows). Both are asyncio event
loops; nothing else depends on which one runs.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["loop_name", "new_loop", "run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new loop from :func:`new_loop`, as ``asyncio.run`` does."""
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(main)


def new_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's, or asyncio's where uvloop is not installed."""
    if loop_name() == "asyncio":  # pragma: no cover
        return asyncio.new_event_loop()
    import uvloop  # here, not above: commands that need no loop start without it

    return uvloop.new_event_loop()


def loop_name() -> str:
    """Which event loop :func:`new_loop` makes: ``uvloop`` or ``asyncio``."""
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
