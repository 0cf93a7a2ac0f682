"""The seed story recorded on both backends, and exports of it; ``key`` is the log's verifier key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ledger import exporting
from ledger.bundle import Selection, encode
from ledger.offline import LogKey, parse_vkey
from ledger.seed import POLICY_ID, story
from ledger.signing import Signer
from tests.domain.conftest import Ledger, ledger  # noqa: F401  (the fixture, shared)

EXPORTED_AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
FOI_OFFICER = {"id": "cabinet-office/foi-team", "role": "auditor"}


@pytest.fixture
async def told(ledger: Ledger) -> Ledger:  # noqa: F811
    for step in story():
        ledger.clock.now = step.at
        await ledger.service.execute(step.command, step.actor.id, step.actor.role)
    return ledger


@pytest.fixture
def key(signer: Signer) -> LogKey:
    return parse_vkey(signer.verifier.vkey)


ALL = ("national-security", "personal-data")


async def export_policy(told: Ledger, signer: Signer, release: tuple[str, ...] = ()) -> dict[str, Any]:
    """The FOI answer: the ban with all its exemptions, releasing ``release``."""
    selection = Selection("policy", POLICY_ID)
    return await exporting.export(told.store, signer, selection, release, FOI_OFFICER, EXPORTED_AT)


def raw(document: dict[str, Any]) -> bytes:
    return encode(document)
