"""PostgreSQL SQL for the stored projections: policy and exemption versions, and positions.

Mixed into the PostgreSQL store (reads) and its write transaction (the projector's
writes, inside the batch that appends the events). See migrations/postgres/0002.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from ledger.errors import Unavailable
from ledger.state_codec import VersionRow, exemption_row, policy_row, version_set
from ledger.store.batched import Batched
from ledger.store.postgres_notices import CHANNEL, LOG_SCHEMA
from ledger.store.version_queries import StateTimes, at_seq, queries, versions
from ledger.versions import FOREVER, VersionSet, name_key

__all__ = [
    "NOTIFY",
    "SAVE_PARTS",
    "PostgresProjectionReads",
    "PostgresProjectionWrites",
    "one_statement",
    "open_rows",
    "save_arguments",
]

Connection = asyncpg.Connection


def one_statement(parts: Sequence[str]) -> str:
    """Data-modifying statements as one (each but the last a WITH query): one round trip."""
    queries = ",\n".join(f"q{i} AS (\n    {part}\n)" for i, part in enumerate(parts[:-1]))
    return f"WITH {queries}\n{parts[-1]}" if queries else parts[-1]


_READS = queries(
    "$",
    StateTimes(
        " CROSS JOIN LATERAL json_to_record(state::json) AS t(valid_from text, expires_at text, revoked_at text)",
        ("t.valid_from", "t.expires_at", "t.revoked_at"),
    ),
)
# The policies banning an app for an organisation, and the exemptions of one account there:
# everything projections.decide_access can use to answer for them, and nothing more.
# With the covered devices' disclosures, so that a decision is one round trip.
_DECISION = versions(
    "app_key = $2 AND organisation_keys && $3::text[]",
    "account_key = $4 AND organisation_key = $5",
    at=at_seq("$"),
    disclosed=True,
)
_DECISION_NOW = versions(  # the same, for now: the indexes of current versions serve it (migration 0009)
    "policy_scopes(app_key, organisation_keys) && $1::text[]",
    "account_key = $2 AND organisation_key = $3",
    at="to_seq IS NULL",
    disclosed=True,
)
# The same for many questions at once (each a row of the arrays: a policy scope for every
# organisation and one for the organisation asked about, as policy_scopes() makes them, the
# account and the organisation), each row led by its question's number from 1. PostgreSQL
# plans it anew for each batch (its generic plan, for ten questions, costs more than a plan for
# the number asked), which a batch of many pays for easily and one question alone does not: a
# question asked alone is asked with _DECISION_NOW.
_DECISIONS_NOW = f"""
SELECT q.n, v.* FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY
    AS q(any_scope, own_scope, account, organisation, n)
CROSS JOIN LATERAL ({
    versions(
        "policy_scopes(app_key, organisation_keys) && ARRAY[q.any_scope, q.own_scope]",
        "account_key = q.account AND organisation_key = q.organisation",
        at="to_seq IS NULL",
        disclosed=True,
    )
}) AS v
"""
Question = tuple[str, str, str | None]  # the keys of an app, an organisation and an account (or None)
Answer = tuple[VersionSet, dict[str, bytes]]  # the versions that decide it, the devices' disclosures


def open_rows(policy_ids: str, exemption_ids: str) -> str:
    """SQL for where each projection stands (kind 'n': its name as ``state``, its position as
    ``from_seq``), and the open version of each policy and exemption in the SQL arrays
    ``policy_ids`` and ``exemption_ids`` that exists: its latest, found by the primary key (a
    condition on to_seq alone was planned, on a new database, as a scan of every open version)."""
    return f"""
SELECT 'n' AS kind, position AS from_seq, NULL::bigint AS to_seq, name AS state, NULL AS devices_sd
FROM projection_positions
UNION ALL
SELECT 'p' AS kind, v.from_seq, v.to_seq, v.state, NULL AS devices_sd
FROM unnest({policy_ids}::text[]) AS i(id), LATERAL (
    SELECT from_seq, to_seq, state FROM policy_versions WHERE policy_id = i.id ORDER BY from_seq DESC LIMIT 1
) AS v WHERE v.to_seq IS NULL
UNION ALL
SELECT 'e', v.from_seq, v.to_seq, v.state, v.devices_sd
FROM unnest({exemption_ids}::text[]) AS i(id), LATERAL (
    SELECT from_seq, to_seq, state, devices_sd FROM exemption_versions WHERE exemption_id = i.id
    ORDER BY from_seq DESC LIMIT 1
) AS v WHERE v.to_seq IS NULL
"""


_OPEN = open_rows("$1", "$2")
_EVERY = (
    "SELECT kind, from_seq, to_seq, state, devices_sd FROM ("
    " SELECT 'p' AS kind, policy_id AS id, from_seq, to_seq, state, NULL AS devices_sd FROM policy_versions"
    " UNION ALL SELECT 'e', exemption_id, from_seq, to_seq, state, devices_sd FROM exemption_versions"
    ") AS v ORDER BY kind, id, from_seq"
)

# New versions inserted, superseded ones closed (the parts of one statement), position moved.
SAVE_PARTS = (
    """INSERT INTO policy_versions (policy_id, from_seq, to_seq, app_key, organisation_keys, state)
    SELECT v.id, v.from_seq, v.to_seq, v.app_key, ARRAY(SELECT json_array_elements_text(v.orgs::json)), v.state
    FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[])
        AS v(id, from_seq, to_seq, app_key, orgs, state)
    ON CONFLICT (policy_id, from_seq) DO UPDATE SET to_seq = excluded.to_seq""",
    """INSERT INTO exemption_versions
        (exemption_id, from_seq, to_seq, policy_id, account_key, organisation_key, devices_sd, state)
    SELECT * FROM unnest($7::text[], $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::text[],
                         $13::text[], $14::text[])
    ON CONFLICT (exemption_id, from_seq) DO UPDATE SET to_seq = excluded.to_seq""",
    """INSERT INTO projection_positions (name, position) VALUES ($15, $16)
    ON CONFLICT (name) DO UPDATE SET position = excluded.position""",
)
_SAVE = one_statement(SAVE_PARTS)
_POLICY_COLUMNS = ["policy_id", "from_seq", "to_seq", "app_key", "organisation_keys", "state"]
_EXEMPTION_COLUMNS = [
    "exemption_id", "from_seq", "to_seq", "policy_id", "account_key", "organisation_key", "devices_sd", "state"
]  # fmt: skip


_VERSION_TABLES = ("policy_versions", "exemption_versions")
_NEW = "_rebuilt"  # suffix of the tables a rebuild fills, and of their indexes until the swap
_PRIMARY_KEY = "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'p'"
_INDEXES = """
SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = $1::regclass AND NOT i.indisprimary ORDER BY c.relname
"""
# A rebuild's index builds sort every version of the log. PostgreSQL's default
# maintenance_work_mem (64MB) leaves them little room to sort in memory, and at most one
# parallel worker (each needs 32MB of it). For the rebuild's transaction alone, and never less
# than the server's own, they get INDEX_BUILD_MEMORY kB: the indexes of a 1,000,000-event log
# took 3.9 s instead of 4.3-4.4 s (whole rebuilds 41,600-42,300 against 38,800-39,800 events/s,
# alternating).
INDEX_BUILD_MEMORY = 256 * 1024
_ROOM_TO_SORT = """
SELECT set_config('maintenance_work_mem', greatest(setting::bigint, $1::bigint)::text, true)
FROM pg_settings WHERE name = 'maintenance_work_mem'
"""
# The privileges others hold on a table (an operator's GRANTs), as GRANT statements' parts.
_GRANTS = """
SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END, a.is_grantable
FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a LEFT JOIN pg_roles r ON r.oid = a.grantee
WHERE c.oid = $1::regclass AND a.grantee <> c.relowner
"""


NOTIFY = f"SELECT pg_notify('{CHANNEL}', ({LOG_SCHEMA}))"


def _indexing(definition: str, name: str, table: str) -> str:
    """An index's ``CREATE INDEX`` statement, for the same index on the rebuilt table."""
    found = rf" INDEX {re.escape(name)} ON ((?:\S+\.)?){re.escape(table)} "
    made = re.sub(found, rf" INDEX {name}{_NEW} ON \g<1>{table}{_NEW} ", definition, count=1)
    if made == definition:
        raise Unavailable(f"cannot rebuild index {name}: its definition is not understood: {definition}")
    return made


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows turned into ``width`` column arrays, for ``unnest``."""
    return [[row[i] for row in rows] for i in range(width)]


def save_arguments(versions: VersionSet, name: str, position: int) -> list[Any]:
    """The arguments of :data:`SAVE_PARTS`."""
    policies = [(*r[:4], json.dumps(r[4]), r[5]) for r in map(policy_row, versions.policies)]
    exemptions = [exemption_row(v) for v in versions.exemptions]
    return [*_columns(policies, 6), *_columns(exemptions, 8), name, position]


def _scopes(app_key: str, organisation_key: str) -> tuple[str, str]:
    """The policy scopes that ban ``app_key`` in an organisation: for every organisation, and for
    that one (as policy_scopes() makes them)."""
    return f"{app_key}\x1f*", f"{app_key}\x1f{organisation_key}"


def _answer(rows: Sequence[asyncpg.Record | tuple[Any, ...]]) -> Answer:
    """A decision query's rows (the versions, each with its covered devices' digest and
    disclosure) as the versions and the disclosures by digest."""
    return version_set(_rows(rows)), {r[4]: bytes(r[5]) for r in rows if r[5] is not None}


def _rows(records: Sequence[asyncpg.Record | tuple[Any, ...]]) -> list[VersionRow]:
    return [(r[0], r[1], r[2], r[3], r[4]) for r in records]


class PostgresProjectionWrites:
    """The projector's side of a write transaction (which holds the log's lock).

    The open versions read with the log head (:meth:`remember_open`) answer the projector's
    read of them without a round trip, until versions are saved."""

    _conn: Connection
    _opened: tuple[frozenset[str], frozenset[str], list[VersionRow]] | None = None

    def remember_open(self, policy_ids: Sequence[str], exemption_ids: Sequence[str], rows: list[VersionRow]) -> None:
        """Keep ``rows``, read by :func:`open_rows` for these ids in this transaction."""
        self._opened = frozenset(policy_ids), frozenset(exemption_ids), rows

    async def open_versions(
        self, name: str, policy_ids: Sequence[str], exemption_ids: Sequence[str]
    ) -> tuple[int, VersionSet]:
        opened = self._opened
        if opened is not None and opened[0].issuperset(policy_ids) and opened[1].issuperset(exemption_ids):
            rows = opened[2]
        else:
            rows = _rows(await self._conn.fetch(_OPEN, list(policy_ids), list(exemption_ids)))
        position = next((row[1] for row in rows if row[0] == "n" and row[3] == name), 0)
        found = version_set(row for row in rows if row[0] != "n")
        policies, exemptions = set(policy_ids), set(exemption_ids)
        return position, VersionSet(
            tuple(v for v in found.policies if v.state.policy_id in policies),
            tuple(v for v in found.exemptions if v.state.exemption_id in exemptions),
        )

    async def save_versions(self, versions: VersionSet, name: str, position: int) -> None:
        """Insert new versions, close the superseded ones (``to_seq`` set), record ``position``."""
        self._opened = None
        await self._conn.execute(_SAVE, *save_arguments(versions, name, position))

    async def start_rebuild(self) -> None:
        self._opened = None
        await self.make_rebuild_tables()
        await self._conn.execute("DELETE FROM projection_positions")

    async def make_rebuild_tables(self) -> None:
        """Empty tables beside the version tables, with their columns and checks but no index
        yet (loading them is then much faster); readers keep reading the old tables until
        :meth:`finish_rebuild` puts these in their place."""
        for table in _VERSION_TABLES:
            await self._conn.execute(
                f"DROP TABLE IF EXISTS {table}{_NEW};"
                f" CREATE TABLE {table}{_NEW} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            )

    async def load_versions(self, versions: VersionSet) -> None:
        """Bulk-load versions into the tables :meth:`start_rebuild` made, with COPY."""
        policies = [(*r[:4], list(r[4]), r[5]) for r in map(policy_row, versions.policies)]
        if policies:
            await self._conn.copy_records_to_table(f"policy_versions{_NEW}", records=policies, columns=_POLICY_COLUMNS)
        exemptions = [exemption_row(v) for v in versions.exemptions]
        if exemptions:
            await self._conn.copy_records_to_table(
                f"exemption_versions{_NEW}", records=exemptions, columns=_EXEMPTION_COLUMNS
            )

    async def finish_rebuild(self) -> None:
        """Give the new tables the old ones' primary keys and indexes (each built in one pass, with
        at least INDEX_BUILD_MEMORY to sort in), statistics and the privileges others were granted
        on them; then drop the old ones, give the new ones their names and tell the services' read
        caches. Readers wait only for this last step."""
        await self._conn.execute(_ROOM_TO_SORT, INDEX_BUILD_MEMORY)
        swap = []
        for table in _VERSION_TABLES:
            for privilege, grantee, grantable in await self._conn.fetch(_GRANTS, table):
                option = " WITH GRANT OPTION" if grantable else ""
                await self._conn.execute(f"GRANT {privilege} ON {table}{_NEW} TO {grantee}{option}")
            await self._conn.execute(f"ALTER TABLE {table}{_NEW} ADD {await self._conn.fetchval(_PRIMARY_KEY, table)}")
            swap += [f"DROP TABLE {table}", f"ALTER TABLE {table}{_NEW} RENAME TO {table}",
                     f"ALTER INDEX {table}{_NEW}_pkey RENAME TO {table}_pkey"]  # fmt: skip
            for name, definition in await self._conn.fetch(_INDEXES, table):
                await self._conn.execute(_indexing(definition, name, table))
                swap.append(f"ALTER INDEX {name}{_NEW} RENAME TO {name}")
            await self._conn.execute(f"ANALYZE {table}{_NEW}")
        await self._conn.execute("; ".join(swap))
        await self._conn.execute(NOTIFY)


class PostgresProjectionReads:
    """Reads of the stored projections, each one query; current decisions asked together
    share one (``_decisions``, which the store makes of :meth:`_decide_now`)."""

    _decisions: Batched[Question, Answer]

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        raise NotImplementedError  # the store provides it

    async def projection_position(self, name: str) -> int:
        rows = await self._fetch("SELECT position FROM projection_positions WHERE name = $1", name)
        return int(rows[0]["position"]) if rows else 0

    async def seq_at(self, moment: datetime) -> int:
        rows = await self._fetch(
            "SELECT seq FROM events WHERE recorded_at <= $1 ORDER BY recorded_at DESC, seq DESC LIMIT 1", moment
        )
        return int(rows[0]["seq"]) if rows else -1

    async def versions_at(
        self, seq: int, *, policy_id: str | None = None, exemption_id: str | None = None
    ) -> VersionSet:
        if policy_id is not None:
            return version_set(_rows(await self._fetch(_READS.policy, seq, policy_id)))
        if exemption_id is not None:
            return version_set(_rows(await self._fetch(_READS.exemption, seq, exemption_id)))
        return version_set(_rows(await self._fetch(_READS.every, seq)))

    async def policy_page(self, seq: int, *, after: str = "", limit: int | None = None) -> VersionSet:
        return version_set(_rows(await self._fetch(_READS.policies_page, seq, after, limit)))

    async def policy_counted(self, seq: int, policy_id: str) -> VersionSet:
        return version_set(_rows(await self._fetch(_READS.policy_counted, seq, policy_id)))

    async def exemption_page(
        self, seq: int, *, after: str = "", limit: int | None = None, policy_id: str | None = None
    ) -> VersionSet:
        if policy_id is None:
            return version_set(_rows(await self._fetch(_READS.exemptions_page, seq, after, limit)))
        return version_set(_rows(await self._fetch(_READS.exemptions_page_under, seq, after, limit, policy_id)))

    async def decision_versions(
        self, seq: int, *, app: str, organisation: str, account: str | None
    ) -> tuple[VersionSet, dict[str, bytes]]:
        app_key, organisation_key = name_key(app), name_key(organisation)
        account_key, organisations = None if account is None else name_key(account), ["*", organisation_key]
        if seq == FOREVER:
            return await self._decisions.ask((app_key, organisation_key, account_key))
        return _answer(await self._fetch(_DECISION, seq, app_key, organisations, account_key, organisation_key))

    async def _decide_now(self, questions: list[Question]) -> list[Answer]:
        """The current versions that decide each question, in one query."""
        if len(questions) == 1:
            [(app, organisation, account)] = questions
            return [_answer(await self._fetch(_DECISION_NOW, list(_scopes(app, organisation)), account, organisation))]
        scopes = [_scopes(app, organisation) for app, organisation, _ in questions]
        rows = await self._fetch(
            _DECISIONS_NOW,
            [any_organisation for any_organisation, _ in scopes],
            [own for _, own in scopes],
            [account for _, _, account in questions],
            [organisation for _, organisation, _ in questions],
        )
        found: list[list[asyncpg.Record]] = [[] for _ in questions]
        for row in rows:
            found[row[0] - 1].append(row)
        return [_answer([tuple(r)[1:] for r in mine]) for mine in found]  # each row without its question's number

    async def all_versions(self) -> VersionSet:
        return version_set(_rows(await self._fetch(_EVERY)))
