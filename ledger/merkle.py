"""RFC 9162 §2.1 Merkle tree hashing, audit paths and consistency proofs.

Proofs are built from the hashes of *perfect subtrees*: ``(level, index)`` names the
subtree of ``2**level`` leaves starting at leaf ``index * 2**level``. The caller hands in
a :data:`NodeReader` that returns those stored hashes; :func:`nodes_needed` tells it which
ones a proof will ask for, so a store can fetch all of them in one read. No I/O here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from ledger.errors import InvalidInput, VerificationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "NodeKey",
    "NodeReader",
    "consistency_proof",
    "frontier_keys",
    "frontier_root",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "nodes_needed",
    "perfect_nodes_completed",
    "root",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

NodeKey = tuple[int, int]
NodeReader = Callable[[int, int], bytes]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree(lo: int, hi: int, node: NodeReader) -> bytes:
    """MTH(D[lo:hi]) from stored perfect subtrees; ``lo`` is aligned as in MTH."""
    n = hi - lo
    if n & (n - 1) == 0:
        level = n.bit_length() - 1
        return node(level, lo >> level)
    k = _split(n)
    return node_hash(_subtree(lo, lo + k, node), _subtree(lo + k, hi, node))


def root(size: int, node: NodeReader) -> bytes:
    """The tree head MTH(D[0:size])."""
    return _subtree(0, size, node) if size else EMPTY_ROOT


def inclusion_proof(index: int, size: int, node: NodeReader) -> list[bytes]:
    """The audit path PATH(index, D[0:size]), bottom-up (RFC 9162 §2.1.3.1)."""
    if not 0 <= index < size:
        raise InvalidInput(f"leaf index {index} is not in a tree of size {size}")
    return _path(index, 0, size, node)


def _path(m: int, lo: int, hi: int, node: NodeReader) -> list[bytes]:
    n = hi - lo
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, lo, lo + k, node), _subtree(lo + k, hi, node)]
    return [*_path(m - k, lo + k, hi, node), _subtree(lo, lo + k, node)]


def consistency_proof(size1: int, size2: int, node: NodeReader) -> list[bytes]:
    """PROOF(size1, D[0:size2]) (RFC 9162 §2.1.4.1); empty when the sizes are equal."""
    if not 0 < size1 <= size2:
        raise InvalidInput(f"no consistency proof from size {size1} to size {size2}: need 0 < from <= to")
    if size1 == size2:
        return []
    return _subproof(size1, 0, size2, True, node)


def _subproof(m: int, lo: int, hi: int, whole: bool, node: NodeReader) -> list[bytes]:
    n = hi - lo
    if m == n:
        return [] if whole else [_subtree(lo, hi, node)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, lo, lo + k, whole, node), _subtree(lo + k, hi, node)]
    return [*_subproof(m - k, lo + k, hi, False, node), _subtree(lo, lo + k, node)]


def nodes_needed(build: Callable[[NodeReader], object]) -> list[NodeKey]:
    """The stored subtree hashes that ``build(node)`` will read, in order of first use."""
    keys: dict[NodeKey, None] = {}

    def record(level: int, index: int) -> bytes:
        keys[(level, index)] = None
        return EMPTY_ROOT

    build(record)
    return list(keys)


def perfect_nodes_completed(index: int, hash_: bytes, frontier: list[bytes]) -> list[tuple[NodeKey, bytes]]:
    """Append leaf ``index`` (its hash) to the right edge; return the subtrees it completes.

    ``frontier`` holds the hashes of the perfect subtrees that make up D[0:index], largest
    first, and is updated in place (it is the log's compact range).
    """
    completed = [((0, index), hash_)]
    level, current = 0, hash_
    while (index >> level) & 1:
        current = node_hash(frontier.pop(), current)
        level += 1
        completed.append(((level, index >> level), current))
    frontier.append(current)
    return completed


def frontier_keys(size: int) -> list[NodeKey]:
    """The perfect subtrees that make up D[0:size], largest first (its compact range)."""
    keys, start = [], 0
    for level in reversed(range(size.bit_length())):
        if size >> level & 1:
            keys.append((level, start >> level))
            start += 1 << level
    return keys


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes held in memory (for verifiers and tests)."""
    frontier: list[bytes] = []
    for i, h in enumerate(hashes):
        perfect_nodes_completed(i, h, frontier)
    return frontier_root(frontier)


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """The root of a tree given its compact range (perfect subtrees, largest first)."""
    if not frontier:
        return EMPTY_ROOT
    current = frontier[-1]
    for h in reversed(frontier[:-1]):
        current = node_hash(h, current)
    return current


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_: bytes) -> None:
    """RFC 9162 §2.1.3.2; raises :class:`VerificationError` or returns nothing."""
    if not 0 <= index < size:
        raise VerificationError(f"leaf index {index} is not in a tree of size {size}")
    if len(leaf) != HASH_SIZE:
        raise VerificationError(f"leaf hash is {len(leaf)} bytes, not {HASH_SIZE}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise VerificationError(f"inclusion proof for leaf {index} in size {size} is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError(f"inclusion proof for leaf {index} in size {size} is too short")
    if r != root_:
        raise VerificationError(f"inclusion proof for leaf {index} does not lead to the root of size {size}")


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 §2.1.4.2; raises :class:`VerificationError` or returns nothing."""
    if not 0 < size1 <= size2:
        raise VerificationError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == size2:
        if proof:
            raise VerificationError("sizes are equal, so the consistency proof must be empty")
        if root1 != root2:
            raise VerificationError(f"two different roots for the same size {size1}")
        return
    if not proof:
        raise VerificationError(f"empty consistency proof from size {size1} to {size2}")
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError(f"consistency proof from {size1} to {size2} is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError(f"consistency proof from {size1} to {size2} is too short")
    if fr != root1:
        raise VerificationError(f"consistency proof does not lead to the old root of size {size1}")
    if sr != root2:
        raise VerificationError(f"consistency proof does not lead to the new root of size {size2}")
