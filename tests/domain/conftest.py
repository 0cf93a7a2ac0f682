"""A ledger service on the shared ``store`` (SQLite and PostgreSQL), with a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from ledger.projector import VersionProjector
from ledger.service import LedgerService
from ledger.signing import Signer
from ledger.store.base import Store
from ledger.writer import Writer


@dataclass
class Clock:
    """Now, as the test says: the rules' ``now`` and the time the writer records."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class Ledger:
    service: LedgerService
    writer: Writer
    store: Store
    clock: Clock


@pytest.fixture
async def ledger(store: Store, signer: Signer) -> AsyncIterator[Ledger]:
    clock = Clock(datetime(2025, 1, 1, tzinfo=UTC))
    writer = Writer(store, signer, projectors=[VersionProjector()], clock=clock)
    await writer.start()
    yield Ledger(LedgerService(store, writer, clock=clock), writer, store, clock)
    await writer.close()
