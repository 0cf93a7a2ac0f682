"""Proofs and tree heads served from stored subtree hashes: one read per request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from ledger import merkle
from ledger.errors import InvalidInput, NotFound

__all__ = ["ReadNodes", "consistency_proof", "inclusion_proof", "root_at"]

ReadNodes = Callable[[Sequence[merkle.NodeKey]], Awaitable[dict[merkle.NodeKey, bytes]]]
Build = Callable[[merkle.NodeReader], object]


async def _run(read_nodes: ReadNodes, size: int, build: Callable[[merkle.NodeReader], list[bytes] | bytes]) -> object:
    keys = merkle.nodes_needed(build)
    nodes = await read_nodes(keys)
    if len(nodes) != len(keys):
        raise NotFound(f"the log has fewer than {size} events")
    return build(lambda level, index: nodes[(level, index)])


async def inclusion_proof(read_nodes: ReadNodes, seq: int, size: int) -> list[bytes]:
    """The audit path of ``seq`` in the tree of ``size`` leaves."""
    if not 0 <= seq < size:
        raise InvalidInput(f"seq {seq} is not in a tree of size {size}; need 0 <= seq < size")
    proof = await _run(read_nodes, size, lambda node: merkle.inclusion_proof(seq, size, node))
    assert isinstance(proof, list)
    return proof


async def consistency_proof(read_nodes: ReadNodes, size1: int, size2: int) -> list[bytes]:
    """The proof that the tree of ``size2`` leaves extends the tree of ``size1``."""
    if not 0 < size1 <= size2:
        raise InvalidInput(f"no consistency proof from {size1} to {size2}; need 0 < from <= to")
    proof = await _run(read_nodes, size2, lambda node: merkle.consistency_proof(size1, size2, node))
    assert isinstance(proof, list)
    return proof


async def root_at(read_nodes: ReadNodes, size: int) -> bytes:
    """The root hash of the tree of the first ``size`` leaves."""
    if size < 0:
        raise InvalidInput("tree size must be 0 or more")
    root = await _run(read_nodes, size, lambda node: merkle.root(size, node))
    assert isinstance(root, bytes)
    return root
