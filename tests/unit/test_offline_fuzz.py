"""Whatever a bundle's bytes are changed to, the offline verifier answers with a BundleError
naming the problem (or, for a change that alters nothing checked, the same verdict): never
another exception. The bundle is built in memory from a small signed log."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.bundle import Selection, encode, make_bundle
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.offline import Bundle, BundleError, parse_vkey, verify_bundle
from tests.unit._builders import build_log, log_signer

SIGNER = log_signer()
LOG = build_log(SIGNER, 7)


def _bundle() -> dict[str, Any]:
    nodes: dict[merkle.NodeKey, bytes] = {}
    frontier: list[bytes] = []
    for event in LOG:
        nodes.update(merkle.perfect_nodes_completed(event.seq, event.leaf_hash, frontier))
    size = len(LOG)
    checkpoint = Checkpoint(SIGNER.name, size, merkle.frontier_root(frontier))

    def node(level: int, index: int) -> bytes:
        return nodes[(level, index)]

    return make_bundle(
        signer=SIGNER, note=sign_checkpoint(checkpoint, SIGNER), checkpoint=checkpoint, selection=Selection("log"),
        leaves=[(e.seq, e.leaf) for e in LOG], proofs={e.seq: merkle.inclusion_proof(e.seq, size, node) for e in LOG},
        streams={e.stream: 1 for e in LOG}, release=(), disclosures={}, erased=(),
        exported_by={"id": "fuzz", "role": "auditor"}, exported_at=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip


RAW = encode(_bundle())
KEY = parse_vkey(SIGNER.verifier.vkey)


def outcome(raw: bytes) -> Bundle | BundleError:
    try:
        return verify_bundle(raw, KEY, workers=1)
    except BundleError as e:
        return e


def test_the_untouched_bundle_verifies() -> None:
    assert isinstance(outcome(RAW), Bundle)


@settings(max_examples=300)
@given(st.integers(0, len(RAW) - 1), st.integers(0, 255))
def test_a_changed_byte_is_named_or_changes_nothing(at: int, value: int) -> None:
    changed = RAW[:at] + bytes([value]) + RAW[at + 1 :]
    result = outcome(changed)
    assert isinstance(result, BundleError) or result.manifest == json.loads(RAW)["manifest"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*path, i))
    return found


PATHS = _paths(json.loads(RAW))


@settings(max_examples=300)
@given(st.sampled_from(PATHS), json_values)
def test_any_member_replaced_by_other_json_is_named_never_a_crash(path: tuple[Any, ...], value: Any) -> None:
    document = json.loads(RAW)
    target = document
    for step in path[:-1]:
        target = target[step]
    unchanged = target[path[-1]] == value
    target[path[-1]] = value
    assert isinstance(outcome(json.dumps(document).encode()), BundleError) or unchanged
