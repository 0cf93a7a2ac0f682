"""RFC 9162 §2.1 Merkle trees: hashing, roots, audit paths and consistency proofs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.errors import InvalidInput, VerificationError
from tests.vectors_path import LOCAL_VECTORS

REFERENCE = json.loads((LOCAL_VECTORS / "merkle" / "reference-tree.json").read_text())
LEAF_INPUTS = [bytes.fromhex(h) for h in REFERENCE["leafInputs"]]
ROOTS = [bytes.fromhex(h) for h in REFERENCE["rootHashes"]]
NODE_HASHES = {
    (level, index): bytes.fromhex(h) for level, row in enumerate(REFERENCE["nodeHashes"]) for index, h in enumerate(row)
}
MAX_SIZE = 300


# -- an in-memory tree, stored as the log stores it ------------------------------------------------


@dataclass
class Tree:
    """Leaf hashes appended one by one; every perfect subtree they complete kept by key."""

    leaf_hashes: list[bytes] = field(default_factory=list)
    nodes: dict[merkle.NodeKey, bytes] = field(default_factory=dict)
    frontier: list[bytes] = field(default_factory=list)

    def append(self, hash_: bytes) -> None:
        completed = merkle.perfect_nodes_completed(len(self.leaf_hashes), hash_, self.frontier)
        self.nodes.update(completed)
        self.leaf_hashes.append(hash_)

    def node(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]

    @property
    def size(self) -> int:
        return len(self.leaf_hashes)


@cache
def tree(size: int) -> Tree:
    """A tree of ``size`` leaves ``0``, ``1``, ... as 4-byte big-endian integers."""
    t = Tree()
    for i in range(size):
        t.append(merkle.leaf_hash(i.to_bytes(4, "big")))
    return t


@dataclass
class RecordingReader:
    """A NodeReader that serves only the keys it was told about, and notes each read."""

    tree: Tree
    allowed: set[merkle.NodeKey]
    reads: list[merkle.NodeKey] = field(default_factory=list)

    def __call__(self, level: int, index: int) -> bytes:
        assert (level, index) in self.allowed, f"read {(level, index)}, which nodes_needed did not list"
        self.reads.append((level, index))
        return self.tree.node(level, index)


def mth(hashes: list[bytes]) -> bytes:
    """MTH as RFC 9162 §2.1.1 defines it, over leaf hashes: the reference for the fast code."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return merkle.node_hash(mth(hashes[:k]), mth(hashes[k:]))


def flip(data: bytes, bit: int = 0) -> bytes:
    return bytes([data[0] ^ (1 << bit), *data[1:]])


@st.composite
def size_and_index(draw: st.DrawFn, min_size: int = 1) -> tuple[int, int]:
    size = draw(st.integers(min_size, MAX_SIZE))
    return size, draw(st.integers(0, size - 1))


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(st.integers(1, MAX_SIZE))
    return draw(st.integers(1, size2)), size2


@st.composite
def growing_sizes(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(st.integers(2, MAX_SIZE))
    return draw(st.integers(1, size2 - 1)), size2


# -- hashing (RFC 9162 §2.1.1) ----------------------------------------------------------------------


def test_empty_root_is_sha256_of_nothing() -> None:
    assert hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT
    assert merkle.EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_leaf_hash_prefixes_the_leaf_with_a_zero_byte() -> None:
    assert merkle.leaf_hash(b"leaf") == hashlib.sha256(b"\x00leaf").digest()


def test_node_hash_prefixes_the_children_with_a_one_byte() -> None:
    left, right = bytes(32), bytes([1]) * 32
    assert merkle.node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


def test_leaf_of_the_empty_string_hashes_to_the_reference_value() -> None:
    assert merkle.leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"


@pytest.mark.parametrize("index", range(8))
def test_reference_leaf_hashes(index: int) -> None:
    assert merkle.leaf_hash(LEAF_INPUTS[index]) == NODE_HASHES[(0, index)]


@pytest.mark.parametrize("size", range(9))
def test_reference_roots(size: int) -> None:
    hashes = [merkle.leaf_hash(leaf) for leaf in LEAF_INPUTS[:size]]
    assert merkle.root_from_leaf_hashes(hashes) == ROOTS[size]


def test_reference_roots_of_one_and_eight_leaves_are_the_published_ones() -> None:
    assert ROOTS[1].hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert ROOTS[8].hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def test_appending_the_reference_leaves_completes_exactly_the_reference_subtrees() -> None:
    t = Tree()
    for leaf in LEAF_INPUTS:
        t.append(merkle.leaf_hash(leaf))
    assert t.nodes == NODE_HASHES


@pytest.mark.parametrize("size", range(9))
def test_reference_roots_from_stored_subtrees(size: int) -> None:
    assert merkle.root(size, lambda level, index: NODE_HASHES[(level, index)]) == ROOTS[size]


@pytest.mark.parametrize(("size", "keys"), list(enumerate(REFERENCE["compactRanges"])))
def test_frontier_keys_of_the_reference_trees(size: int, keys: list[list[int]]) -> None:
    assert merkle.frontier_keys(size) == [tuple(key) for key in keys]


# -- roots and stored subtrees -------------------------------------------------------------------


@given(st.integers(0, MAX_SIZE))
def test_root_from_stored_subtrees_equals_root_from_leaf_hashes(size: int) -> None:
    t = tree(size)
    assert merkle.root(size, t.node) == merkle.root_from_leaf_hashes(t.leaf_hashes) == mth(t.leaf_hashes)


@given(two_sizes())
def test_root_of_a_prefix_reads_only_subtrees_complete_at_that_size(sizes_: tuple[int, int]) -> None:
    size, larger = sizes_
    prefix = Tree()
    for h in tree(larger).leaf_hashes[:size]:
        prefix.append(h)
    assert merkle.root(size, prefix.node) == mth(tree(larger).leaf_hashes[:size])


@given(st.integers(0, MAX_SIZE))
def test_frontier_keys_name_the_compact_range(size: int) -> None:
    t = tree(size)
    keys = merkle.frontier_keys(size)
    assert [t.node(*key) for key in keys] == t.frontier
    assert sum(1 << level for level, _ in keys) == size


@given(st.integers(0, MAX_SIZE))
def test_frontier_keys_cover_the_leaves_from_left_to_right_largest_first(size: int) -> None:
    start = 0
    levels = []
    for level, index in merkle.frontier_keys(size):
        assert index << level == start
        start += 1 << level
        levels.append(level)
    assert start == size
    assert levels == sorted(set(levels), reverse=True)


@given(st.integers(0, MAX_SIZE))
def test_frontier_root_of_the_compact_range_is_the_root(size: int) -> None:
    assert merkle.frontier_root(tree(size).frontier) == mth(tree(size).leaf_hashes)


def test_perfect_nodes_completed_by_the_eighth_leaf_climb_to_the_top() -> None:
    t = tree(7)
    frontier = list(t.frontier)
    h = merkle.leaf_hash(b"eighth")
    completed = merkle.perfect_nodes_completed(7, h, frontier)
    assert [key for key, _ in completed] == [(0, 7), (1, 3), (2, 1), (3, 0)]
    assert frontier == [completed[-1][1]]


def test_perfect_nodes_completed_by_an_even_leaf_is_only_the_leaf() -> None:
    frontier = list(tree(4).frontier)
    h = merkle.leaf_hash(b"fifth")
    assert merkle.perfect_nodes_completed(4, h, frontier) == [((0, 4), h)]
    assert frontier == [*tree(4).frontier, h]


# -- inclusion proofs (RFC 9162 §2.1.3) -----------------------------------------------------------


def test_every_inclusion_proof_of_the_small_trees_verifies() -> None:
    for size in range(1, 34):
        t, root = tree(size), merkle.root(size, tree(size).node)
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, t.node)
            merkle.verify_inclusion(index, size, t.leaf_hashes[index], proof, root)


@settings(max_examples=300)
@given(size_and_index())
def test_inclusion_proof_verifies(case: tuple[int, int]) -> None:
    size, index = case
    t = tree(size)
    proof = merkle.inclusion_proof(index, size, t.node)
    merkle.verify_inclusion(index, size, t.leaf_hashes[index], proof, mth(t.leaf_hashes))


@given(size_and_index(), st.integers(0, MAX_SIZE))
def test_inclusion_proof_of_an_older_tree_verifies_from_a_larger_store(case: tuple[int, int], extra: int) -> None:
    size, index = case
    t = tree(size + extra)
    proof = merkle.inclusion_proof(index, size, t.node)
    merkle.verify_inclusion(index, size, t.leaf_hashes[index], proof, mth(t.leaf_hashes[:size]))


@given(size_and_index(min_size=2), st.data())
def test_inclusion_fails_when_any_proof_hash_changes(case: tuple[int, int], data: st.DataObject) -> None:
    size, index = case
    t = tree(size)
    proof = merkle.inclusion_proof(index, size, t.node)
    at, bit = data.draw(st.integers(0, len(proof) - 1)), data.draw(st.integers(0, 7))
    proof[at] = flip(proof[at], bit)
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(index, size, t.leaf_hashes[index], proof, mth(t.leaf_hashes))


@given(size_and_index(), st.data())
def test_inclusion_fails_for_any_other_index(case: tuple[int, int], data: st.DataObject) -> None:
    size, index = case
    other = data.draw(st.integers(0, 2 * MAX_SIZE).filter(lambda i: i != index))
    t = tree(size)
    proof = merkle.inclusion_proof(index, size, t.node)
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(other, size, t.leaf_hashes[index], proof, mth(t.leaf_hashes))


@given(size_and_index(), st.data())
def test_inclusion_fails_against_the_tree_head_of_any_other_size(case: tuple[int, int], data: st.DataObject) -> None:
    size, index = case
    other = data.draw(st.integers(index + 1, MAX_SIZE).filter(lambda s: s != size))
    t = tree(max(size, other))
    proof = merkle.inclusion_proof(index, size, t.node)
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(index, other, t.leaf_hashes[index], proof, mth(t.leaf_hashes[:other]))


def test_inclusion_binds_the_size_only_through_the_root() -> None:
    # The audit paths of leaf 0 in trees of 3 and 4 leaves take the same turns, so the
    # path for size 3 still leads to the size-3 root when the size is misstated as 4:
    # the size must come from a signed checkpoint together with its root.
    t = tree(4)
    proof = merkle.inclusion_proof(0, 3, t.node)
    merkle.verify_inclusion(0, 4, t.leaf_hashes[0], proof, mth(t.leaf_hashes[:3]))


@given(size_and_index(), st.integers(0, 7))
def test_inclusion_fails_when_the_root_changes(case: tuple[int, int], bit: int) -> None:
    size, index = case
    t = tree(size)
    proof = merkle.inclusion_proof(index, size, t.node)
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(index, size, t.leaf_hashes[index], proof, flip(mth(t.leaf_hashes), bit))


@given(size_and_index())
def test_inclusion_fails_for_another_leaf(case: tuple[int, int]) -> None:
    size, index = case
    t = tree(size)
    proof = merkle.inclusion_proof(index, size, t.node)
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(index, size, merkle.leaf_hash(b"not in the tree"), proof, mth(t.leaf_hashes))


@given(size_and_index(min_size=2))
def test_inclusion_fails_when_a_hash_is_added_or_dropped(case: tuple[int, int]) -> None:
    size, index = case
    t = tree(size)
    proof, root = merkle.inclusion_proof(index, size, t.node), mth(t.leaf_hashes)
    with pytest.raises(VerificationError, match="too long"):
        merkle.verify_inclusion(index, size, t.leaf_hashes[index], [*proof, root], root)
    with pytest.raises(VerificationError, match="too short"):
        merkle.verify_inclusion(index, size, t.leaf_hashes[index], proof[:-1], root)


def test_inclusion_of_the_only_leaf_is_an_empty_proof() -> None:
    t = tree(1)
    assert merkle.inclusion_proof(0, 1, t.node) == []
    merkle.verify_inclusion(0, 1, t.leaf_hashes[0], [], t.leaf_hashes[0])


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 1), (5, 3), (-1, 3)])
def test_inclusion_proof_refuses_an_index_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(InvalidInput, match="not in a tree"):
        merkle.inclusion_proof(index, size, tree(8).node)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 1), (5, 3), (-1, 3)])
def test_verify_inclusion_refuses_an_index_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(VerificationError, match="not in a tree"):
        merkle.verify_inclusion(index, size, bytes(32), [], bytes(32))


@pytest.mark.parametrize("length", [0, 31, 33])
def test_verify_inclusion_refuses_a_leaf_hash_of_the_wrong_length(length: int) -> None:
    with pytest.raises(VerificationError, match="leaf hash"):
        merkle.verify_inclusion(0, 1, bytes(length), [], bytes(length))


# -- consistency proofs (RFC 9162 §2.1.4) -------------------------------------------------------


def test_every_consistency_proof_of_the_small_trees_verifies() -> None:
    for size2 in range(1, 34):
        t = tree(size2)
        for size1 in range(1, size2 + 1):
            proof = merkle.consistency_proof(size1, size2, t.node)
            merkle.verify_consistency(size1, size2, mth(t.leaf_hashes[:size1]), mth(t.leaf_hashes), proof)


@settings(max_examples=300)
@given(two_sizes())
def test_consistency_proof_verifies(case: tuple[int, int]) -> None:
    size1, size2 = case
    t = tree(size2)
    proof = merkle.consistency_proof(size1, size2, t.node)
    merkle.verify_consistency(size1, size2, mth(t.leaf_hashes[:size1]), mth(t.leaf_hashes), proof)


@given(growing_sizes(), st.data())
def test_consistency_fails_when_any_proof_hash_changes(case: tuple[int, int], data: st.DataObject) -> None:
    size1, size2 = case
    t = tree(size2)
    proof = merkle.consistency_proof(size1, size2, t.node)
    at, bit = data.draw(st.integers(0, len(proof) - 1)), data.draw(st.integers(0, 7))
    proof[at] = flip(proof[at], bit)
    with pytest.raises(VerificationError):
        merkle.verify_consistency(size1, size2, mth(t.leaf_hashes[:size1]), mth(t.leaf_hashes), proof)


@given(two_sizes(), st.booleans(), st.integers(0, 7))
def test_consistency_fails_when_either_root_changes(case: tuple[int, int], old: bool, bit: int) -> None:
    size1, size2 = case
    t = tree(size2)
    proof = merkle.consistency_proof(size1, size2, t.node)
    root1, root2 = mth(t.leaf_hashes[:size1]), mth(t.leaf_hashes)
    if old:
        root1 = flip(root1, bit)
    else:
        root2 = flip(root2, bit)
    with pytest.raises(VerificationError):
        merkle.verify_consistency(size1, size2, root1, root2, proof)


@given(growing_sizes(), st.data())
def test_consistency_fails_against_the_tree_heads_of_other_sizes(case: tuple[int, int], data: st.DataObject) -> None:
    size1, size2 = case
    other1 = data.draw(st.integers(1, size2).filter(lambda s: s != size1))
    other2 = data.draw(st.integers(size1, MAX_SIZE).filter(lambda s: s != size2))
    t = tree(max(size2, other2))
    proof = merkle.consistency_proof(size1, size2, t.node)
    old, new = mth(t.leaf_hashes[:size1]), mth(t.leaf_hashes[:size2])
    with pytest.raises(VerificationError):
        merkle.verify_consistency(other1, size2, mth(t.leaf_hashes[:other1]), new, proof)
    with pytest.raises(VerificationError):
        merkle.verify_consistency(size1, other2, old, mth(t.leaf_hashes[:other2]), proof)


@given(growing_sizes())
def test_consistency_fails_for_a_rewritten_history(case: tuple[int, int]) -> None:
    size1, size2 = case
    t = tree(size2)
    rewritten = Tree()
    for i, h in enumerate(t.leaf_hashes):
        rewritten.append(merkle.leaf_hash(b"forged") if i == size1 - 1 else h)
    proof = merkle.consistency_proof(size1, size2, rewritten.node)
    with pytest.raises(VerificationError):
        merkle.verify_consistency(size1, size2, mth(t.leaf_hashes[:size1]), mth(rewritten.leaf_hashes), proof)


@given(growing_sizes())
def test_consistency_fails_when_a_hash_is_added_or_dropped(case: tuple[int, int]) -> None:
    size1, size2 = case
    t = tree(size2)
    proof = merkle.consistency_proof(size1, size2, t.node)
    root1, root2 = mth(t.leaf_hashes[:size1]), mth(t.leaf_hashes)
    with pytest.raises(VerificationError):
        merkle.verify_consistency(size1, size2, root1, root2, [*proof, root2])
    with pytest.raises(VerificationError):
        merkle.verify_consistency(size1, size2, root1, root2, proof[:-1])


def test_consistency_between_equal_sizes_is_an_empty_proof() -> None:
    t = tree(5)
    root = mth(t.leaf_hashes)
    assert merkle.consistency_proof(5, 5, t.node) == []
    merkle.verify_consistency(5, 5, root, root, [])


def test_consistency_between_equal_sizes_refuses_a_non_empty_proof() -> None:
    root = mth(tree(5).leaf_hashes)
    with pytest.raises(VerificationError, match="must be empty"):
        merkle.verify_consistency(5, 5, root, root, [root])


def test_consistency_between_equal_sizes_refuses_two_roots() -> None:
    with pytest.raises(VerificationError, match="two different roots"):
        merkle.verify_consistency(5, 5, bytes(32), flip(bytes(32)), [])


def test_consistency_between_different_sizes_refuses_an_empty_proof() -> None:
    t = tree(5)
    with pytest.raises(VerificationError, match="empty consistency proof"):
        merkle.verify_consistency(4, 5, mth(t.leaf_hashes[:4]), mth(t.leaf_hashes), [])


@pytest.mark.parametrize(("size1", "size2"), [(0, 0), (0, 5), (6, 5), (-1, 5)])
def test_consistency_proof_refuses_sizes_out_of_order(size1: int, size2: int) -> None:
    with pytest.raises(InvalidInput, match="no consistency proof"):
        merkle.consistency_proof(size1, size2, tree(8).node)


@pytest.mark.parametrize(("size1", "size2"), [(0, 0), (0, 5), (6, 5), (-1, 5)])
def test_verify_consistency_refuses_sizes_out_of_order(size1: int, size2: int) -> None:
    with pytest.raises(VerificationError, match="no consistency proof"):
        merkle.verify_consistency(size1, size2, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [])


# -- nodes_needed: which stored subtrees a proof reads --------------------------------------------

Build = Callable[[merkle.NodeReader], object]


def reads_for(t: Tree, build: Build) -> tuple[list[merkle.NodeKey], RecordingReader]:
    needed = merkle.nodes_needed(build)
    reader = RecordingReader(t, set(needed))
    build(reader)
    return needed, reader


def log_bound(size: int) -> int:
    return 2 * (size - 1).bit_length() + 2


@settings(max_examples=200)
@given(size_and_index())
def test_inclusion_proof_reads_only_the_few_nodes_it_names(case: tuple[int, int]) -> None:
    size, index = case
    needed, reader = reads_for(tree(size), lambda node: merkle.inclusion_proof(index, size, node))
    assert len(needed) <= log_bound(size)
    assert set(reader.reads) == set(needed)


@settings(max_examples=200)
@given(two_sizes())
def test_consistency_proof_reads_only_the_few_nodes_it_names(case: tuple[int, int]) -> None:
    size1, size2 = case
    needed, reader = reads_for(tree(size2), lambda node: merkle.consistency_proof(size1, size2, node))
    assert len(needed) <= log_bound(size2)
    assert set(reader.reads) == set(needed)


@given(st.integers(1, MAX_SIZE))
def test_root_reads_exactly_the_compact_range(size: int) -> None:
    needed, reader = reads_for(tree(size), lambda node: merkle.root(size, node))
    assert sorted(needed) == sorted(merkle.frontier_keys(size))
    assert set(reader.reads) == set(needed)


def test_nodes_needed_lists_each_key_once_in_order_of_first_use() -> None:
    needed = merkle.nodes_needed(lambda node: [node(0, 1), node(2, 0), node(0, 1)])
    assert needed == [(0, 1), (2, 0)]


def test_nodes_needed_of_the_empty_tree_is_nothing() -> None:
    assert merkle.nodes_needed(lambda node: merkle.root(0, node)) == []
