"""A second codebase agrees: sigstore-python's RFC 9162 inclusion check and its signed-note
checkpoint check accept our bundles' proofs and checkpoints, and reject altered ones.

sigstore reads a Rekor entry; the few attributes it reads are handed to it here as plain
objects. Its keyring verifies the Ed25519 note signature with our published public key.
"""

from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sigstore._internal.merkle import verify_merkle_inclusion
from sigstore._internal.rekor.checkpoint import verify_checkpoint
from sigstore._internal.trust import Keyring
from sigstore.errors import VerificationError as SigstoreError
from sigstore_models.common import v1 as common_v1

from ledger import exporting
from ledger.checkpoint import Checkpoint
from ledger.note import parse_note
from ledger.signing import Signer
from tests.domain.conftest import Ledger
from tests.export.conftest import export_policy


def keyring(signer: Signer) -> Keyring:
    public = Ed25519PublicKey.from_public_bytes(signer.verifier.public_key)
    der = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return Keyring(
        [common_v1.PublicKey(raw_bytes=base64.b64encode(der), key_details=common_v1.PublicKeyDetails.PKIX_ED25519)]
    )


def rekor_entry(leaf: bytes, seq: int, hashes: list[bytes], note: str, signer: Signer) -> Any:
    """The parts of a Rekor entry sigstore reads: body, proof, checkpoint and log key id."""
    checkpoint = Checkpoint.from_body(parse_note(note.encode()).text)
    proof = SimpleNamespace(log_index=seq, tree_size=checkpoint.size, hashes=hashes, root_hash=checkpoint.root,
                            checkpoint=SimpleNamespace(envelope=note))  # fmt: skip
    log_id = SimpleNamespace(key_id=signer.key_id + bytes(28))  # the note's 4-byte key hint, then padding
    return SimpleNamespace(_inner=SimpleNamespace(canonicalized_body=leaf, inclusion_proof=proof, log_id=log_id))


def entries(bundle: dict[str, Any], signer: Signer) -> list[Any]:
    return [rekor_entry(item["leaf"].encode(), item["seq"], [base64.b64decode(h) for h in item["hashes"]],
                        bundle["checkpoint"], signer) for item in bundle["events"]]  # fmt: skip


async def test_sigstore_accepts_every_inclusion_proof_of_a_bundle(told: Ledger, signer: Signer) -> None:
    for entry in entries(await export_policy(told, signer), signer):
        verify_merkle_inclusion(entry)


async def test_sigstore_accepts_the_bundles_checkpoint_signature(told: Ledger, signer: Signer) -> None:
    for entry in entries(await export_policy(told, signer), signer):
        verify_checkpoint(keyring(signer), entry)


async def test_sigstore_accepts_a_receipt(told: Ledger, signer: Signer) -> None:
    receipt = await exporting.receipt(told.store, 4)
    hashes = [base64.b64decode(h) for h in receipt["inclusion"]["hashes"]]
    entry = rekor_entry(base64.b64decode(receipt["leaf"]), 4, hashes, receipt["checkpoint"], signer)
    verify_merkle_inclusion(entry)
    verify_checkpoint(keyring(signer), entry)


async def test_sigstore_rejects_an_altered_proof(told: Ledger, signer: Signer) -> None:
    entry = entries(await export_policy(told, signer), signer)[2]
    entry._inner.inclusion_proof.hashes[0] = bytes(32)
    with pytest.raises(SigstoreError, match="invalid root hash"):
        verify_merkle_inclusion(entry)


async def test_sigstore_rejects_an_altered_checkpoint(told: Ledger, signer: Signer) -> None:
    entry = entries(await export_policy(told, signer), signer)[0]
    proof = entry._inner.inclusion_proof
    proof.checkpoint.envelope = proof.checkpoint.envelope.replace("\n6\n", "\n7\n")
    with pytest.raises(SigstoreError, match="invalid signature"):
        verify_checkpoint(keyring(signer), entry)
