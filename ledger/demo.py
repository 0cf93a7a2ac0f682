"""``policy-ledger demo``: the seed story (ledger/seed.py) recorded through the service.

Each command goes through the rules with the story's own date as their ``now`` (so the
2025 renewal is judged as of 2025); the events are recorded, signed and projected now.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from ledger.errors import RuleViolation
from ledger.events import Recorded, decode_leaf
from ledger.policy import event_type, stream_of
from ledger.projector import VersionProjector
from ledger.seed import Step, story
from ledger.service import LedgerService
from ledger.signing import Signer
from ledger.store.base import Store
from ledger.writer import Writer

__all__ = ["record_story"]


async def record_story(store: Store, signer: Signer, *, echo: Callable[[str], None] = print) -> list[Recorded]:
    """Record every step of the story, saying what each recorded. A story cut short (say, by
    Ctrl-C) is taken up where it stopped; a whole one, or other events under its ids, refused."""
    steps = story()
    recorded_before = await _recorded_before(store, steps)
    if recorded_before == len(steps):
        raise RuleViolation("this database already holds the whole seed story; run the demo against a fresh database")
    today = [datetime.now(UTC)]
    writer = Writer(store, signer, projectors=[VersionProjector()])
    await writer.start()
    recorded: list[Recorded] = []
    try:
        service = LedgerService(store, writer, clock=lambda: today[0])
        for step in steps[recorded_before:]:
            today[0] = step.at
            for event in await service.execute(step.command, step.actor.id, step.actor.role):
                echo(f"seq {event.seq:>4}  {step.at:%Y-%m-%d}  {event.event['type']:<18} {event.stream}")
                recorded.append(event)
    finally:
        await writer.close()
    return recorded


async def _recorded_before(store: Store, steps: Sequence[Step]) -> int:
    """How many of the story's first steps the log holds already, as the story records them."""
    held = {stream: [decode_leaf(row.leaf, row.seq) for row in await store.stream_leaves(stream)]
            for stream in {stream_of(step.command) for step in steps}}  # fmt: skip
    done = 0
    for step in steps:
        events = held[stream_of(step.command)]
        if not events:
            break
        event = events.pop(0)
        if (event["type"], event["actor"]["id"]) != (event_type(step.command), step.actor.id):
            raise RuleViolation(f"this database holds {event['stream']} from another source than the seed story; "
                                "run the demo against a fresh database")  # fmt: skip
        done += 1
    if any(held.values()):
        raise RuleViolation("this database holds more under the seed story's ids than the story; run the demo "
                            "against a fresh database")  # fmt: skip
    return done
