"""A batch sealed ahead goes in only if the log under the lock is exactly as it assumed."""

from __future__ import annotations

from ledger.events import ZERO_HASH
from ledger.store.base import HeadRow
from ledger.writer import _Head, _Sealed

HEAD = _Head(5, (b"f" * 32,), b"h" * 32, "2026-01-01T00:00:00Z")


def sealed(versions: dict[str, int], taken: frozenset[tuple[str, str]] = frozenset()) -> _Sealed:
    return _Sealed(HEAD, versions, taken, HEAD, [], [])


def found(size: int = 5, leaf: bytes = b"h" * 32, versions: dict[str, int] | None = None, **kw: object) -> HeadRow:
    return HeadRow(size, versions if versions is not None else {"policy/P-1": 2}, leaf, "", 0, **kw)  # type: ignore[arg-type]


def test_the_guess_holds_when_the_log_and_the_streams_are_as_assumed() -> None:
    assert sealed({"policy/P-1": 2, "policy/P-2": 0}).holds(found())


def test_a_log_grown_since_the_guess_does_not_hold() -> None:
    assert not sealed({"policy/P-1": 2}).holds(found(size=6))


def test_a_log_of_the_same_size_ending_in_another_leaf_does_not_hold() -> None:
    assert not sealed({"policy/P-1": 2}).holds(found(leaf=b"x" * 32))


def test_a_stream_at_another_version_does_not_hold() -> None:
    assert not sealed({"policy/P-1": 1}).holds(found())


def test_a_stream_assumed_new_that_exists_does_not_hold() -> None:
    assert not sealed({"policy/P-1": 2, "policy/P-9": 0}).holds(found(versions={"policy/P-1": 2, "policy/P-9": 1}))


def test_a_key_taken_unbeknown_to_the_guess_does_not_hold() -> None:
    assert not sealed({"policy/P-1": 2}).holds(found(taken=frozenset({("policy-officer:1", "key-1")})))


def test_a_key_assumed_taken_that_is_free_does_not_hold() -> None:
    assert not sealed({"policy/P-1": 2}, frozenset({("policy-officer:1", "key-1")})).holds(found())


def test_an_empty_log_is_where_an_empty_head_is() -> None:
    empty = _Head(0, (), ZERO_HASH, "")
    assert _Sealed(empty, {}, frozenset(), empty, [], []).holds(HeadRow(0, {}, b"", "", 0))
