from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ledger import event_loop
from ledger.signing import Signer
from ledger.store.base import Store
from ledger.writer import Writer
from tests.backends import Backend, postgres_backend, require_postgres, sqlite_backend

ORIGIN = "ledger.test.example/device-policy"


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async test runs on the event loop the service runs on (ledger.event_loop)."""
    return {event_loop.loop_name(): event_loop.new_loop}


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return require_postgres()


@pytest.fixture
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        async with sqlite_backend(tmp_path) as b:
            yield b
    else:
        url = request.getfixturevalue("postgres_url")
        async with postgres_backend(url) as b:
            yield b


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store


@pytest.fixture
async def writer(store: Store, signer: Signer) -> AsyncIterator[Writer]:
    w = Writer(store, signer)
    await w.start()
    yield w
    await w.close()
