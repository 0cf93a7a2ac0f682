"""The SQL both backends read the stored versions with, each in its own parameter marks.

PostgreSQL numbers its parameters $1, $2, ...; SQLite takes ?1, ?2, ... as well, so each
query is written once with ``mark`` ("$" or "?") before the numbers. Parameter 1 is the
seq the versions must stand at (``FOREVER``: the current ones). How each backend reads
an exemption's times out of its ``state`` JSON is given as :class:`StateTimes`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Queries", "StateTimes", "at_seq", "queries", "versions"]


def at_seq(mark: str) -> str:
    """The versions standing at the seq given as parameter 1."""
    return f"from_seq <= {mark}1 AND (to_seq IS NULL OR to_seq > {mark}1)"


def versions(policies: str, exemptions: str, *, at: str, disclosed: bool = False) -> str:
    """Policy then exemption versions, as ``VersionRow``s, that match the two conditions;
    ``disclosed``: each row followed by the disclosure of its sealed covered devices, if held."""
    devices = ", (SELECT disclosure FROM disclosures WHERE digest = devices_sd)" if disclosed else ""
    return (
        _policy_rows(policies, at, ", NULL" if disclosed else "")
        + f" UNION ALL SELECT 'e', from_seq, to_seq, state, devices_sd{devices} FROM exemption_versions"
        f" WHERE {at} AND {exemptions}"
    )


def _policy_rows(policies: str, at: str, more: str = "") -> str:
    columns = f"'p' AS kind, from_seq, to_seq, state, NULL AS devices_sd{more}"
    return f"SELECT {columns} FROM policy_versions WHERE {at} AND {policies}"


@dataclass(frozen=True)
class StateTimes:
    """A backend's SQL for the text of an exemption's valid_from, expires_at and revoked_at
    (NULL if none) in its ``state`` JSON: ``columns``, after ``join`` (which may parse it once)."""

    join: str
    columns: tuple[str, str, str]


def _with_terms(policies: str, at: str, times: StateTimes) -> str:
    """Policy versions, then as ``VersionRow``s of kind 't' the terms of the exemptions under
    them (``state``: valid_from|expires_at|revoked_at, ``devices_sd``: the policy id), not
    their whole states: all that counting the active ones needs."""
    term = " || '|' || ".join(f"coalesce({column}, '')" for column in times.columns)
    return (
        _policy_rows(f"policy_id IN ({policies})", at)
        + f" UNION ALL SELECT 't', from_seq, to_seq, {term}, policy_id FROM exemption_versions{times.join}"
        f" WHERE {at} AND policy_id IN ({policies})"
    )


@dataclass(frozen=True)
class Queries:
    """The reads both backends share. A page holds the ids after parameter 2, at most
    parameter 3 of them (a limit of NULL in PostgreSQL, -1 in SQLite, is none)."""

    every: str  # every version standing
    policy: str  # policy parameter 2, and the exemptions under it
    policy_counted: str  # policy parameter 2, and the terms of the exemptions under it
    exemption: str  # exemption parameter 2, and the policy it is under
    policies_page: str  # with the terms of the exemptions under them, to count the active ones
    exemptions_page: str  # with the policies they are under, which give them their status
    exemptions_page_under: str  # the same, only those under the policy of parameter 4


def queries(mark: str, times: StateTimes) -> Queries:
    at, in_page = at_seq(mark), "{0} IN (SELECT {0} FROM page)".format
    policies_page = (
        f"WITH page AS (SELECT policy_id FROM policy_versions WHERE {at} AND policy_id > {mark}2"
        f" ORDER BY policy_id LIMIT {mark}3) " + _with_terms("SELECT policy_id FROM page", at, times)
    )
    exemptions_page, exemptions_page_under = (
        f"WITH page AS (SELECT exemption_id, policy_id FROM exemption_versions WHERE {at}"
        f" AND exemption_id > {mark}2{under} ORDER BY exemption_id LIMIT {mark}3) "
        + versions(in_page("policy_id"), in_page("exemption_id"), at=at)
        for under in ("", f" AND policy_id = {mark}4")
    )
    return Queries(
        every=versions("1 = 1", "1 = 1", at=at),
        policy=versions(f"policy_id = {mark}2", f"policy_id = {mark}2", at=at),
        policy_counted=_with_terms(f"SELECT CAST({mark}2 AS text)", at, times),
        exemption=versions(
            f"policy_id IN (SELECT policy_id FROM exemption_versions WHERE exemption_id = {mark}2)",
            f"exemption_id = {mark}2",
            at=at,
        ),
        policies_page=policies_page,
        exemptions_page=exemptions_page,
        exemptions_page_under=exemptions_page_under,
    )
