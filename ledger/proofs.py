"""Proofs and tree heads served from stored subtree hashes: one read per request."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from ledger import merkle
from ledger.errors import InvalidInput, NotFound

__all__ = [
    "NodeCache",
    "ReadNodes",
    "consistency_proof",
    "inclusion",
    "inclusion_proof",
    "inclusion_proofs",
    "root_at",
]

ReadNodes = Callable[[Sequence[merkle.NodeKey]], Awaitable[dict[merkle.NodeKey, bytes]]]
T = TypeVar("T")


class NodeCache:
    """The most recently used stored hashes, in front of ``read_nodes``.

    A stored hash never changes once written (only complete subtrees are stored, in the
    append-only log's own transaction), so a cached one is never stale."""

    def __init__(self, read_nodes: ReadNodes, capacity: int = 65_536) -> None:
        self._read = read_nodes
        self._capacity = capacity
        self._nodes: OrderedDict[merkle.NodeKey, bytes] = OrderedDict()

    async def __call__(self, keys: Sequence[merkle.NodeKey]) -> dict[merkle.NodeKey, bytes]:
        found = {key: self._nodes[key] for key in keys if key in self._nodes}
        for key in found:
            self._nodes.move_to_end(key)
        missing = [key for key in keys if key not in found]
        if missing:
            fetched = await self._read(missing)
            found |= fetched
            self._nodes.update(fetched)
            while len(self._nodes) > self._capacity:
                self._nodes.popitem(last=False)
        return found


async def _run(read_nodes: ReadNodes, size: int, build: Callable[[merkle.NodeReader], T]) -> T:
    """Ask ``build`` which stored hashes it needs, fetch them in one read, then build."""
    keys = merkle.nodes_needed(build)
    nodes = await read_nodes(keys)
    if len(nodes) != len(keys):
        raise NotFound(f"the log has fewer than {size} events")
    return build(lambda level, index: nodes[(level, index)])


def _check_inclusion(seq: int, size: int) -> None:
    if not 0 <= seq < size:
        raise InvalidInput(f"seq {seq} is not in a tree of size {size}; need 0 <= seq < size")


async def inclusion_proof(read_nodes: ReadNodes, seq: int, size: int) -> list[bytes]:
    """The audit path of ``seq`` in the tree of ``size`` leaves."""
    _check_inclusion(seq, size)
    return await _run(read_nodes, size, lambda node: merkle.inclusion_proof(seq, size, node))


async def inclusion(read_nodes: ReadNodes, seq: int, size: int) -> tuple[bytes, list[bytes], bytes]:
    """The leaf hash of ``seq``, its audit path and the root it leads to, from one read."""
    _check_inclusion(seq, size)

    def build(node: merkle.NodeReader) -> tuple[bytes, list[bytes], bytes]:
        return node(0, seq), merkle.inclusion_proof(seq, size, node), merkle.root(size, node)

    return await _run(read_nodes, size, build)


async def inclusion_proofs(read_nodes: ReadNodes, seqs: Sequence[int], size: int) -> dict[int, list[bytes]]:
    """The audit path of each of ``seqs`` in the tree of ``size`` leaves, from one read."""
    for seq in seqs:
        _check_inclusion(seq, size)
    return await _run(read_nodes, size, lambda node: {seq: merkle.inclusion_proof(seq, size, node) for seq in seqs})


async def consistency_proof(read_nodes: ReadNodes, size1: int, size2: int) -> list[bytes]:
    """The proof that the tree of ``size2`` leaves extends the tree of ``size1``."""
    if not 0 < size1 <= size2:
        raise InvalidInput(f"no consistency proof from {size1} to {size2}; need 0 < from <= to")
    return await _run(read_nodes, size2, lambda node: merkle.consistency_proof(size1, size2, node))


async def root_at(read_nodes: ReadNodes, size: int) -> bytes:
    """The root hash of the tree of the first ``size`` leaves."""
    if size < 0:
        raise InvalidInput("tree size must be 0 or more")
    return await _run(read_nodes, size, lambda node: merkle.root(size, node))
