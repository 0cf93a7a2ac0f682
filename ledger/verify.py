"""Whole-log verification: every leaf, signature, link, the tree and the checkpoints.

Pure: the caller feeds leaves in seq order, in chunks. :func:`check_leaves` is the
costly, independent part (parse, canonical form, signature) and may run in other
processes; :class:`LogAuditor` does the sequential part (seq contiguity, ``prev``
links, Merkle roots) and checks checkpoints. Every failure is one
:class:`VerificationError` naming the first bad seq or the checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.errors import InvalidInput, VerificationError
from ledger.events import ZERO_HASH, decode_leaf, unsigned_leaf
from ledger.merkle import EMPTY_ROOT, frontier_root, leaf_hash, perfect_nodes_completed
from ledger.signing import Verifier

__all__ = ["CheckedLeaf", "LogAuditor", "TrustedKey", "check_leaves", "key_terms"]


@dataclass(frozen=True)
class TrustedKey:
    """A log key the verifier trusts for events from ``from_seq`` on, and only before
    ``until_seq`` once the log moved to its successor there (None: still the log's key)."""

    verifier: Verifier
    from_seq: int = 0
    until_seq: int | None = None


def key_terms(stated: Sequence[TrustedKey], given: Sequence[TrustedKey] | None = None) -> tuple[TrustedKey, ...]:
    """The keys a log states it has had (``stated``, each from its ``from_seq``), each trusted
    only until the next one begins: a key the log moved on from signs none of its later
    events, even if it leaked. With ``given`` (keys the verifier was handed, each from the seq
    it was given with, else 0), only those, each trusted only where its given term and the
    one the log states for it meet; a key the log does not list keeps its given term. A
    stated term can only narrow the trust in a given key, never widen it."""
    listed = {k.verifier.key_id: k for k in _successive(sorted(stated, key=lambda k: k.from_seq))}
    if given is None:
        return tuple(listed.values())
    return tuple(_within(k, listed.get(k.verifier.key_id)) for k in _successive(given))


def _successive(keys: Sequence[TrustedKey]) -> tuple[TrustedKey, ...]:
    """Each key trusted from its ``from_seq`` until the next key's; keys from one seq (none
    signed between) share their term."""
    ends = dict(itertools.pairwise(sorted({k.from_seq for k in keys})))
    return tuple(TrustedKey(k.verifier, k.from_seq, ends.get(k.from_seq)) for k in keys)


def _within(given: TrustedKey, stated: TrustedKey | None) -> TrustedKey:
    if stated is None:
        return given
    until = _earlier(given.until_seq, stated.until_seq)
    return TrustedKey(given.verifier, max(given.from_seq, stated.from_seq), until)


def _earlier(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


@dataclass(frozen=True)
class CheckedLeaf:
    seq: int
    leaf_hash: bytes
    prev: bytes


@lru_cache(maxsize=64)
def _public_key(raw: bytes) -> VerifyKey:
    """libsodium's Ed25519 (PyNaCl): a whole log's signatures are checked here, at about twice
    the rate of OpenSSL's through ``cryptography`` (which signs, and checks one at a time)."""
    return VerifyKey(raw)


def check_leaves(origin: str, keys: Sequence[TrustedKey], leaves: Sequence[tuple[int, bytes]]) -> list[CheckedLeaf]:
    """Check each leaf on its own: canonical event of this log, signed by a trusted key."""
    by_id = {k.verifier.key_id.hex(): k for k in keys}
    return [_check_leaf(origin, by_id, seq, leaf) for seq, leaf in leaves]


def _check_leaf(origin: str, keys: dict[str, TrustedKey], seq: int, leaf: bytes) -> CheckedLeaf:
    event = decode_leaf(leaf, seq)
    if event["log"] != origin:
        raise VerificationError(f"event belongs to log {event['log']!r}, not {origin!r}", seq=seq)
    key = keys.get(event["key_id"])
    if key is None:
        raise VerificationError(f"signed by key {event['key_id']!r}, which is not a trusted key of this log", seq=seq)
    if seq < key.from_seq:
        raise VerificationError(
            f"signed by key {event['key_id']} before it was in use (from seq {key.from_seq})", seq=seq
        )
    if key.until_seq is not None and seq >= key.until_seq:
        raise VerificationError(
            f"signed by key {event['key_id']}, which the log moved on from at seq {key.until_seq}", seq=seq
        )
    try:
        signature, prev = _strict_b64(event["sig"]), _strict_b64(event["prev"])
        _public_key(key.verifier.public_key).verify(unsigned_leaf(leaf, event["sig"]), signature)
    except (binascii.Error, TypeError, InvalidInput):
        raise VerificationError("sig or prev is not valid base64", seq=seq) from None
    except (BadSignatureError, ValueError):  # ValueError: a signature that is not 64 bytes
        raise VerificationError("event signature does not verify", seq=seq) from None
    return CheckedLeaf(seq, leaf_hash(leaf), prev)


def _strict_b64(text: str) -> bytes:
    """Decode base64 that must be in its one canonical spelling (padding bits zero)."""
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode() != text:
        raise binascii.Error("non-canonical base64")
    return raw


class LogAuditor:
    """Folds checked leaves in seq order; remembers the roots at the sizes asked for."""

    def __init__(self, origin: str, keys: Sequence[TrustedKey], *, roots_at: Iterable[int] = ()) -> None:
        self.origin = origin
        self.keys = tuple(keys)
        self.size = 0
        self._prev = ZERO_HASH
        self._frontier: list[bytes] = []
        self._wanted = set(roots_at)
        self.roots: dict[int, bytes] = {0: EMPTY_ROOT} if 0 in self._wanted else {}

    def feed(self, checked: Iterable[CheckedLeaf]) -> None:
        for leaf in checked:
            if leaf.seq != self.size:
                raise VerificationError(
                    f"expected seq {self.size} next: an event is missing or out of order", seq=leaf.seq
                )
            if leaf.prev != self._prev:
                raise VerificationError(f"prev does not match the leaf hash of seq {leaf.seq - 1}", seq=leaf.seq)
            perfect_nodes_completed(leaf.seq, leaf.leaf_hash, self._frontier)
            self._prev = leaf.leaf_hash
            self.size += 1
            if self.size in self._wanted:
                self.roots[self.size] = frontier_root(self._frontier)

    @property
    def root(self) -> bytes:
        return frontier_root(self._frontier)

    def root_at(self, size: int) -> bytes:
        if size == self.size:
            return self.root
        if size not in self.roots:
            raise VerificationError(f"no root was kept for size {size}; ask for it with roots_at")
        return self.roots[size]

    def check_checkpoint(self, note: bytes, what: str = "checkpoint") -> Checkpoint:
        """Verify a signed checkpoint against the leaves fed so far."""
        try:
            checkpoint, _ = open_checkpoint(note, self.origin, [k.verifier for k in self.keys])
        except VerificationError as e:
            raise VerificationError(f"{what}: {e.detail}") from None
        if checkpoint.size > self.size:
            raise VerificationError(
                f"{what} covers {checkpoint.size} events but the log holds only {self.size}: events were removed"
            )
        if self.root_at(checkpoint.size) != checkpoint.root:
            raise VerificationError(f"{what} root for size {checkpoint.size} does not match the log's leaves")
        return checkpoint
