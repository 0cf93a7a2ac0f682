"""The event loop commands, workers and benchmarks run on (ledger.event_loop)."""

from __future__ import annotations

import asyncio

from ledger import event_loop


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_run_runs_a_coroutine_on_uvloop_and_returns_its_value() -> None:
    assert event_loop.run(_loop_module()).startswith("uvloop")


def test_loop_name_says_which_loop_run_uses() -> None:
    assert event_loop.loop_name() == "uvloop"


async def test_the_tests_run_on_the_loop_the_service_runs_on() -> None:
    assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")


def test_new_loop_makes_a_loop_of_the_kind_run_runs() -> None:
    loop = event_loop.new_loop()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()
