"""A batch sealed ahead goes in only if the log under the lock is exactly as it assumed."""

from __future__ import annotations

from ledger.store.base import Assumed, HeadRow

KEY = ("policy-officer:1", "key-1")


def assumed(versions: dict[str, int], taken: frozenset[tuple[str, str]] = frozenset()) -> Assumed:
    return Assumed(5, b"h" * 32, 0, versions, frozenset({KEY}), taken)


def found(
    size: int = 5,
    leaf: bytes = b"h" * 32,
    versions: dict[str, int] | None = None,
    keys_from: int = 0,
    taken: frozenset[tuple[str, str]] = frozenset(),
) -> HeadRow:
    return HeadRow(size, versions if versions is not None else {"policy/P-1": 2}, leaf, "", keys_from, taken)


def test_the_guess_holds_when_the_log_and_the_streams_are_as_assumed() -> None:
    assert assumed({"policy/P-1": 2, "policy/P-2": 0}).holds(found())


def test_a_log_grown_since_the_guess_does_not_hold() -> None:
    assert not assumed({"policy/P-1": 2}).holds(found(size=6))


def test_a_log_of_the_same_size_ending_in_another_leaf_does_not_hold() -> None:
    assert not assumed({"policy/P-1": 2}).holds(found(leaf=b"x" * 32))


def test_a_log_a_newer_key_took_over_does_not_hold() -> None:
    assert not assumed({"policy/P-1": 2}).holds(found(keys_from=5))


def test_a_stream_at_another_version_does_not_hold() -> None:
    assert not assumed({"policy/P-1": 1}).holds(found())


def test_a_stream_assumed_new_that_exists_does_not_hold() -> None:
    assert not assumed({"policy/P-1": 2, "policy/P-9": 0}).holds(found(versions={"policy/P-1": 2, "policy/P-9": 1}))


def test_a_key_taken_unbeknown_to_the_guess_does_not_hold() -> None:
    assert not assumed({"policy/P-1": 2}).holds(found(taken=frozenset({KEY})))


def test_a_key_assumed_taken_that_is_free_does_not_hold() -> None:
    assert not assumed({"policy/P-1": 2}, frozenset({KEY})).holds(found())


def test_an_empty_log_is_where_an_empty_head_is() -> None:
    assert Assumed(0, b"", 0, {}, frozenset(), frozenset()).holds(HeadRow(0, {}, b"", "", 0))


def test_a_log_ending_where_assumed_with_a_stream_moved_ends_there_but_does_not_hold() -> None:
    guess = assumed({"policy/P-1": 1})
    assert guess.ends_at(found())
    assert not guess.holds(found())
