"""SQLite SQL for the stored projections: policy and exemption versions, and positions.

Mixed into the SQLite store (reads) and its write transaction (the projector's writes,
inside the batch that appends the events). See migrations/sqlite/0002.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from ledger.events import format_time
from ledger.state_codec import VersionRow, exemption_row, policy_row, version_set
from ledger.store.version_queries import StateTimes, at_seq, queries, versions
from ledger.versions import FOREVER, VersionSet, name_key

__all__ = ["SqliteProjectionReads", "SqliteProjectionWrites"]

_READS = queries(
    "?",
    StateTimes(
        "", ("json_extract(state, '$.valid_from')", "json_extract(state, '$.expires_at')",
             "json_extract(state, '$.revoked_at')"),
    ),
)  # fmt: skip
# The policies banning an app for an organisation, and the exemptions of one account there:
# everything projections.decide_access can use to answer for them, and nothing more; with
# the covered devices' disclosures, so that a decision is one read.
_DECISION = versions(
    "app_key = ?2 AND EXISTS (SELECT 1 FROM json_each(organisation_keys) WHERE value IN ('*', ?3))",
    "account_key = ?4 AND organisation_key = ?3",
    at=at_seq("?"),
    disclosed=True,
)
_DECISION_NOW = versions(  # the same, for now: the partial indexes of current versions serve it
    "app_key = ?1 AND EXISTS (SELECT 1 FROM json_each(organisation_keys) WHERE value IN ('*', ?2))",
    "account_key = ?3 AND organisation_key = ?2",
    at="to_seq IS NULL",
    disclosed=True,
)
_OPEN = versions(
    "policy_id IN (SELECT value FROM json_each(?1))",
    "exemption_id IN (SELECT value FROM json_each(?2))",
    at="to_seq IS NULL",
)
_EVERY = (
    "SELECT kind, from_seq, to_seq, state, devices_sd FROM ("
    " SELECT 'p' AS kind, policy_id AS id, from_seq, to_seq, state, NULL AS devices_sd FROM policy_versions"
    " UNION ALL SELECT 'e', exemption_id, from_seq, to_seq, state, devices_sd FROM exemption_versions"
    ") ORDER BY kind, id, from_seq"
)
_INSERT_POLICY = (
    "INSERT INTO policy_versions (policy_id, from_seq, to_seq, app_key, organisation_keys, state)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_EXEMPTION = (
    "INSERT INTO exemption_versions"
    " (exemption_id, from_seq, to_seq, policy_id, account_key, organisation_key, devices_sd, state)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


async def _fetch(conn: aiosqlite.Connection, query: str, args: Iterable[Any] = ()) -> list[VersionRow]:
    async with conn.execute(query, tuple(args)) as cursor:
        return [(r[0], r[1], r[2], r[3], r[4]) for r in await cursor.fetchall()]


class SqliteProjectionWrites:
    """The projector's side of a write transaction (which holds the log's lock)."""

    _conn: aiosqlite.Connection

    async def open_versions(
        self, name: str, policy_ids: Sequence[str], exemption_ids: Sequence[str]
    ) -> tuple[int, VersionSet]:
        async with self._conn.execute("SELECT position FROM projection_positions WHERE name = ?", (name,)) as cursor:
            row = await cursor.fetchone()
        rows = await _fetch(self._conn, _OPEN, (json.dumps(list(policy_ids)), json.dumps(list(exemption_ids))))
        return 0 if row is None else int(row[0]), version_set(rows)

    async def save_versions(self, versions: VersionSet, name: str, position: int) -> None:
        """Insert new versions, close the superseded ones (``to_seq`` set), record ``position``."""
        await self._insert(versions, upsert=True)
        await self._conn.execute(
            "INSERT INTO projection_positions (name, position) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            (name, position),
        )

    async def load_versions(self, versions: VersionSet) -> None:
        """Bulk-load versions known to be new (a rebuild)."""
        await self._insert(versions, upsert=False)

    async def _insert(self, versions: VersionSet, *, upsert: bool) -> None:
        policies = [(*r[:4], json.dumps(r[4]), r[5]) for r in map(policy_row, versions.policies)]
        close = " ON CONFLICT ({}, from_seq) DO UPDATE SET to_seq = excluded.to_seq" if upsert else ""
        await self._conn.executemany(_INSERT_POLICY + close.format("policy_id"), policies)
        exemptions = map(exemption_row, versions.exemptions)
        await self._conn.executemany(_INSERT_EXEMPTION + close.format("exemption_id"), exemptions)

    async def start_rebuild(self) -> None:
        for table in ("policy_versions", "exemption_versions", "projection_positions"):
            await self._conn.execute(f"DELETE FROM {table}")

    async def finish_rebuild(self) -> None:
        """Nothing to do: the versions were loaded into the tables themselves."""


class SqliteProjectionReads:
    """Reads of the stored projections, each one query."""

    async def _read(self, query: str, args: Iterable[Any] = ()) -> list[Any]:
        raise NotImplementedError  # the store provides it

    async def projection_position(self, name: str) -> int:
        rows = await self._read("SELECT position FROM projection_positions WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0

    async def seq_at(self, moment: datetime) -> int:
        rows = await self._read(
            "SELECT seq FROM events WHERE recorded_at <= ? ORDER BY recorded_at DESC, seq DESC LIMIT 1",
            (format_time(moment),),
        )
        return int(rows[0][0]) if rows else -1

    async def versions_at(
        self, seq: int, *, policy_id: str | None = None, exemption_id: str | None = None
    ) -> VersionSet:
        if policy_id is not None:
            return version_set(await self._read(_READS.policy, (seq, policy_id)))
        if exemption_id is not None:
            return version_set(await self._read(_READS.exemption, (seq, exemption_id)))
        return version_set(await self._read(_READS.every, (seq,)))

    async def policy_page(self, seq: int, *, after: str = "", limit: int | None = None) -> VersionSet:
        return version_set(await self._read(_READS.policies_page, (seq, after, -1 if limit is None else limit)))

    async def policy_counted(self, seq: int, policy_id: str) -> VersionSet:
        return version_set(await self._read(_READS.policy_counted, (seq, policy_id)))

    async def exemption_page(
        self, seq: int, *, after: str = "", limit: int | None = None, policy_id: str | None = None
    ) -> VersionSet:
        page = (seq, after, -1 if limit is None else limit)
        if policy_id is None:
            return version_set(await self._read(_READS.exemptions_page, page))
        return version_set(await self._read(_READS.exemptions_page_under, (*page, policy_id)))

    async def decision_versions(
        self, seq: int, *, app: str, organisation: str, account: str | None
    ) -> tuple[VersionSet, dict[str, bytes]]:
        keys = (name_key(app), name_key(organisation), None if account is None else name_key(account))
        rows = await (self._read(_DECISION_NOW, keys) if seq == FOREVER else self._read(_DECISION, (seq, *keys)))
        return version_set(r[:5] for r in rows), {r[4]: bytes(r[5]) for r in rows if r[5] is not None}

    async def all_versions(self) -> VersionSet:
        return version_set(await self._read(_EVERY))
