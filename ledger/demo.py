"""``policy-ledger demo``: the seed story (ledger/seed.py) recorded through the service.

Each command goes through the rules with the story's own date as their ``now`` (so the
2025 renewal is judged as of 2025); the events are recorded, signed and projected now.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ledger.errors import RuleViolation
from ledger.events import Recorded
from ledger.projector import VersionProjector
from ledger.seed import POLICY_ID, RESEARCH_ID, UKGOV_ID, story
from ledger.service import LedgerService
from ledger.signing import Signer
from ledger.states import exemption_stream, policy_stream
from ledger.store.base import Store
from ledger.writer import Writer

__all__ = ["record_story"]

STREAMS = (policy_stream(POLICY_ID), exemption_stream(RESEARCH_ID), exemption_stream(UKGOV_ID))


async def record_story(store: Store, signer: Signer, *, echo: Callable[[str], None] = print) -> list[Recorded]:
    """Record every step of the story, saying what each recorded; refuse if its ids are taken."""
    taken = [stream for stream in STREAMS if await store.stream_leaves(stream)]
    if taken:
        raise RuleViolation(
            f"this database already holds {', '.join(taken)}: the seed story was recorded here before; "
            "run the demo against a fresh database"
        )
    today = [datetime.now(UTC)]
    writer = Writer(store, signer, projectors=[VersionProjector()])
    await writer.start()
    recorded: list[Recorded] = []
    try:
        service = LedgerService(store, writer, clock=lambda: today[0])
        for step in story():
            today[0] = step.at
            for event in await service.execute(step.command, step.actor.id, step.actor.role):
                echo(f"seq {event.seq:>4}  {step.at:%Y-%m-%d}  {event.event['type']:<18} {event.stream}")
                recorded.append(event)
    finally:
        await writer.close()
    return recorded
