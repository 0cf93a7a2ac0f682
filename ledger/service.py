"""The ledger service: commands in, recorded events out; questions answered as of any point.

A thin shell over the pure core. ``execute`` loads a stream's state by folding its events
from the log, asks the rules (``ledger.policy``) what to record, seals the sensitive
fields and appends through the writer with the loaded version as the expected one, so a
concurrent change is a VersionConflict: retried (load, decide, append again) unless the
caller named its own expected version. A command that creates its stream (issue, grant)
first skips the load and expects the stream empty. The queries read the stored projections
(``ledger.versions``) as of a seq or a time and answer with the pure
``ledger.projections`` functions. Auditors and admins see sealed fields in clear; everyone
else sees their digests; an erased disclosure shows as erased to all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from ledger import projections
from ledger.errors import (
    Forbidden,
    InvalidInput,
    LedgerError,
    NotFound,
    Unavailable,
    VerificationError,
    VersionConflict,
)
from ledger.events import Claim, Draft, Recorded, decode_leaf
from ledger.policy import (
    Command,
    GrantExemption,
    IssuePolicy,
    NewEvent,
    PolicyCommand,
    check_ids,
    decide_exemption,
    decide_policy,
    required_role,
    stream_of,
)
from ledger.projections import Decision, ExemptionSummary, PolicySummary
from ledger.projector import NAME as PROJECTION
from ledger.read_cache import ReadCache
from ledger.schemas import parse_time, sensitive_fields
from ledger.sensitive import disclosed_value, is_sealed, reveal, seal
from ledger.states import ExemptionState, PolicyState, exemption_stream, fold_exemption, fold_policy, policy_stream
from ledger.store.base import LeafRow, Store
from ledger.versions import FOREVER, ExemptionVersion, VersionSet, view_of
from ledger.writer import Writer

__all__ = ["REVEALING_ROLES", "AsOf", "LedgerService", "parse_as_of", "reveal_for"]

Decided = tuple[tuple[NewEvent, ...], tuple[tuple[str, int], ...]]  # events, and (stream, version) required
Question = tuple[str, str, str | None]  # app, organisation, account, as asked
AsOf = int | datetime | str | None  # a seq, a time (datetime or RFC 3339), or None for now
Categories = Collection[str] | Literal["all"]
REVEALING_ROLES = frozenset({"auditor", "admin"})
ATTEMPTS = 5  # load-decide-append tries when concurrent appends moved the stream on
_DEVICES = sensitive_fields("exemption.granted/1")["devices"]


def reveal_for(role: str | None) -> Categories:
    """The sensitive categories ``role`` reads in clear: all for auditor and admin, else none."""
    return "all" if role in REVEALING_ROLES else frozenset()


def parse_as_of(text: str) -> int | datetime:
    """An ``as_of`` parameter: digits are a seq, anything else an RFC 3339 time."""
    if text.isascii() and text.isdigit():
        if len(text) > 16:
            raise InvalidInput(f"as_of seq {text[:20]}… is beyond any log: a seq is below 2^53", pointer="/as_of")
        return int(text)
    try:
        return parse_time(text)
    except ValueError as e:
        raise InvalidInput(f"as_of must be a seq (e.g. 42) or an RFC 3339 time: {e}", pointer="/as_of") from None


@dataclass(frozen=True)
class _Standing:
    """Where a query stands: versions valid at ``seq`` (FOREVER: now), recorded by ``moment``."""

    seq: int
    moment: datetime | None = None

    @property
    def size(self) -> int:
        return 0 if self.seq == FOREVER else self.seq + 1  # 0: a current view does not count its events


class LedgerService:
    """Commands through the rules into the log; questions answered from the stored projections.

    ``writer`` must carry a :class:`~ledger.projector.VersionProjector` for reads to see
    writes at once (a writer without one leaves the projections behind until the next
    projected batch catches them up). ``clock`` is the rules' ``now`` and the default
    ``at`` of a question. With ``decisions``, current decisions reuse the versions read for
    the same question while the log stands still (``ledger.read_cache``).
    """

    def __init__(
        self,
        store: Store,
        writer: Writer,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        decisions: ReadCache[Question, VersionSet] | None = None,
    ) -> None:
        self._store = store
        self._writer = writer
        self._clock = clock
        self._decisions = decisions or ReadCache(0, None)
        self._turns: dict[str, tuple[asyncio.Lock, int]] = {}  # stream -> its lock, and who holds or awaits it

    # -- commands ------------------------------------------------------------------------

    async def execute(
        self, command: Command, actor_id: str, actor_role: str, claim: Claim | None = None
    ) -> list[Recorded]:
        """Record what ``command`` decides, or raise why not; a refused command writes nothing.

        ``claim`` (an Idempotency-Key) is settled with the seq of the last event, in the same
        transaction that records it; a key settled before is IdempotencyKeyTaken."""
        needed = required_role(command)
        if actor_role != needed:
            raise Forbidden(f"role {actor_role} may not send {type(command).__name__}; it needs the {needed} role")
        check_ids(command)
        actor = {"id": actor_id, "role": actor_role}
        try:
            return await self._record(command, actor, claim, self._decide_new)
        except VersionConflict:
            if command.expected_version is not None:
                raise
        for _ in range(ATTEMPTS - 1):  # the stream moved on while this was decided: decide again
            try:
                async with self._turn(stream_of(command)):  # retries on one stream take turns here
                    return await self._record(command, actor, claim, self._decide)
            except VersionConflict:
                continue
        raise Unavailable(f"{stream_of(command)} changed {ATTEMPTS} times while this was decided, each time by "
                          "another writer; retry")  # fmt: skip

    async def _record(self, command: Command, actor: Mapping[str, str], claim: Claim | None,
                      decide: Callable[[Command], Awaitable[Decided]]) -> list[Recorded]:  # fmt: skip
        decided, requires = await decide(command)
        last = len(decided) - 1
        drafts = [_draft(new, actor, requires, claim if i == last else None) for i, new in enumerate(decided)]
        return [await self._writer.append(draft) for draft in drafts]

    @contextlib.asynccontextmanager
    async def _turn(self, stream: str) -> AsyncIterator[None]:
        """One command at a time on ``stream`` (in this process), while it is held."""
        lock, holders = self._turns.get(stream, (asyncio.Lock(), 0))
        self._turns[stream] = lock, holders + 1
        try:
            async with lock:
                yield
        finally:
            lock, holders = self._turns.pop(stream)
            if holders > 1:
                self._turns[stream] = lock, holders - 1

    async def _decide_new(self, command: Command) -> Decided:
        """:meth:`_decide`, but a command that creates its stream is decided without reading
        the stream, as if it were empty; its events then expect it empty, which the writer
        checks under the log's lock (a taken id is a VersionConflict, and the retry reads it).
        A refusal is decided again against the stream as it stands, so the reason is the true one."""
        if not _creates(command):
            return await self._decide(command)
        try:
            return await self._decide(command, assume_new=True)
        except LedgerError:
            return await self._decide(command)

    async def _decide(self, command: Command, *, assume_new: bool = False) -> Decided:
        """The events ``command`` records, and the other stream they were decided on: an
        exemption's policy must not move (be lifted, say) before they are recorded."""
        if isinstance(command, PolicyCommand):
            policy = None if assume_new else await self._policy(command.policy_id)
            return decide_policy(policy, command), ()
        stream = exemption_stream(command.exemption_id)
        exemption = None if assume_new else fold_exemption(await self._events(stream))
        if isinstance(command, GrantExemption):
            policy_id: str | None = command.policy_id
        else:  # a change: the policy the exemption was granted under
            policy_id = None if exemption is None else exemption.policy_id
        policy = None if policy_id is None else await self._policy(policy_id)
        decided = decide_exemption(policy, exemption, command, self._clock())
        return decided, ((policy_stream(policy.policy_id), policy.version),) if policy is not None else ()

    async def _policy(self, policy_id: str) -> PolicyState | None:
        return fold_policy(await self._events(policy_stream(policy_id)))

    async def _events(self, stream: str) -> list[dict[str, Any]]:
        return [decode_leaf(row.leaf, row.seq) for row in await self._store.stream_leaves(stream)]

    # -- queries -------------------------------------------------------------------------

    async def decide(
        self,
        *,
        app: str,
        organisation: str,
        device: str | None = None,
        account: str | None = None,
        device_class: str | None = None,
        at: datetime | str | None = None,
        as_of: AsOf = None,
    ) -> Decision:
        """May ``app`` run on ``device`` of ``organisation`` for ``account`` at ``at`` (default: the
        ``as_of`` time, else now), as the ledger stood at ``as_of``? The same answer whoever asks."""
        standing = await self._standing(as_of)

        async def load() -> VersionSet:
            # The covered devices are checked even for a caller who may not read them: the answer
            # names no device but the one asked about.
            versions, disclosed = await self._store.decision_versions(
                standing.seq, app=app, organisation=organisation, account=account
            )
            return _revealed_devices(versions, disclosed)

        if standing.seq == FOREVER:  # remembered with the devices: an erasure is announced like an append
            versions = await self._decisions.read((app, organisation, account), load)
        else:
            versions = await load()
        view = view_of(versions, standing.size)
        return projections.decide_access(
            view, app=app, organisation=organisation, device=device, account=account,
            at=self._at(at, standing), device_class=device_class,
        )  # fmt: skip

    async def policies(
        self,
        *,
        at: datetime | str | None = None,
        as_of: AsOf = None,
        after: str = "",
        limit: int | None = None,
    ) -> tuple[PolicySummary, ...]:
        """The policies, by id: the first ``limit`` (None: all) whose ids sort after ``after``."""
        standing = await self._standing(as_of)
        versions = await self._store.policy_page(standing.seq, after=after, limit=limit)
        view = view_of(versions, standing.size)  # nothing sealed: the same for every role
        return projections.policies(view, self._at(at, standing), versions.terms)

    async def policy(self, policy_id: str, *, at: datetime | str | None = None, as_of: AsOf = None) -> PolicySummary:
        standing = await self._standing(as_of)  # a policy's summary holds nothing sealed: the same for every role
        versions = await self._store.policy_counted(standing.seq, policy_id)
        return projections.policy(view_of(versions, standing.size), policy_id, self._at(at, standing), versions.terms)

    async def exemptions(
        self,
        *,
        policy_id: str | None = None,
        at: datetime | str | None = None,
        as_of: AsOf = None,
        role: str | None = None,
        after: str = "",
        limit: int | None = None,
    ) -> tuple[ExemptionSummary, ...]:
        """The exemptions (under ``policy_id``, if given), by id: the first ``limit`` (None: all)
        whose ids sort after ``after``."""
        standing = await self._standing(as_of)
        versions = await self._store.exemption_page(standing.seq, after=after, limit=limit, policy_id=policy_id)
        view = await self._seen(versions, standing, role)
        return projections.exemptions(view, self._at(at, standing), policy_id)

    async def exemption(
        self, exemption_id: str, *, at: datetime | str | None = None, as_of: AsOf = None, role: str | None = None
    ) -> ExemptionSummary:
        standing = await self._standing(as_of)
        view = await self._view(standing, role, exemption_id=exemption_id)
        return projections.exemption(view, exemption_id, self._at(at, standing))

    async def history(self, stream: str, *, as_of: AsOf = None, role: str | None = None) -> list[dict[str, Any]]:
        """The events of ``stream`` (e.g. ``policy/<id>``) up to ``as_of``, sealed fields as ``role`` may see them."""
        standing = await self._standing(as_of)
        events = [e for e in await self._events(stream) if e["seq"] <= standing.seq]
        if not events:
            raise NotFound(f"nothing was recorded on {stream} by then")
        return await self.revealed(events, role)

    async def revealed(self, events: Sequence[Mapping[str, Any]], role: str | None) -> list[dict[str, Any]]:
        """``events`` with their sealed fields revealed for ``role``; erased ones marked erased."""
        digests = [value["_sd"] for e in events for value in e["data"].values() if is_sealed(value)]
        found = await self._store.disclosures(digests) if digests else {}
        erased, categories = set(digests) - set(found), reveal_for(role)
        return [{**e, "data": reveal(e["schema"], e["data"], found, categories, erased)} for e in events]

    async def _standing(self, as_of: AsOf) -> _Standing:
        if isinstance(as_of, str):
            as_of = parse_as_of(as_of)
        if as_of is None:
            return _Standing(FOREVER)
        if isinstance(as_of, datetime):
            return _Standing(await self._store.seq_at(as_of), as_of)
        if as_of < 0:
            raise InvalidInput(f"as_of seq {as_of} must be 0 or more", pointer="/as_of")
        size = await self._store.projection_position(PROJECTION)
        if as_of >= size:
            raise NotFound(f"as_of seq {as_of} is not in the ledger, which holds seqs 0 to {size - 1}")
        [row] = await self._store.read_leaves(as_of, as_of + 1)  # "then" is when that seq was recorded
        return _Standing(as_of, _recorded_at(row))

    def _at(self, at: datetime | str | None, standing: _Standing) -> datetime:
        if isinstance(at, str):
            return _time(at)
        return at or standing.moment or self._clock()

    async def _view(self, standing: _Standing, role: str | None, **one: str | None) -> projections.LedgerView:
        return await self._seen(await self._store.versions_at(standing.seq, **one), standing, role)

    async def _seen(self, versions: VersionSet, standing: _Standing, role: str | None) -> projections.LedgerView:
        """The view of ``versions`` as ``role`` sees it: the covered devices in clear where it
        may read them and they are still disclosed, and known to all where they were erased."""
        sealed = [v for v in versions.exemptions if v.state.devices is None and v.devices_sd]
        found = await self._store.disclosures([v.devices_sd for v in sealed if v.devices_sd]) if sealed else {}
        erased = frozenset(v.state.exemption_id for v in sealed if v.devices_sd not in found)
        categories = reveal_for(role)
        if categories == "all" or _DEVICES in categories:
            versions = _revealed_devices(versions, found)
        return view_of(versions, standing.size, erased)


def _recorded_at(row: LeafRow) -> datetime:
    try:
        return parse_time(decode_leaf(row.leaf, row.seq)["recorded_at"])
    except ValueError:
        raise VerificationError(f"the event stored at seq {row.seq} has no valid recorded_at", seq=row.seq) from None


def _creates(command: Command) -> bool:
    """A command that starts a new stream, sent without an expected version of its own."""
    return isinstance(command, IssuePolicy | GrantExemption) and command.expected_version is None


def _time(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError as e:
        raise InvalidInput(f"at must be an RFC 3339 time: {e}", pointer="/at") from None


def _revealed_devices(versions: VersionSet, disclosures: Mapping[str, bytes]) -> VersionSet:
    return replace(versions, exemptions=tuple(_with_devices(v, disclosures) for v in versions.exemptions))


def _with_devices(version: ExemptionVersion, disclosures: Mapping[str, bytes]) -> ExemptionVersion:
    digest = version.devices_sd
    if version.state.devices is not None or digest is None or digest not in disclosures:
        return version  # in clear already, or erased: matched by account alone
    devices = tuple(disclosed_value(digest, disclosures[digest], "devices"))
    state: ExemptionState = replace(version.state, devices=devices)
    return replace(version, state=state)


def _draft(
    new: NewEvent, actor: Mapping[str, str], requires: tuple[tuple[str, int], ...], claim: Claim | None
) -> Draft:
    """The sealed draft of a decided event, expecting its stream where the rules saw it (and
    the other streams it ``requires``); ``claim`` is the Idempotency-Key it settles."""
    data, disclosures = seal(new.schema, new.data)
    expected = None if new.version is None else new.version - 1
    version = int(new.schema.rpartition("/")[2])
    return Draft(new.stream, new.type, data, actor, version, expected, disclosures=disclosures, claim=claim,
                 requires=requires)  # fmt: skip
