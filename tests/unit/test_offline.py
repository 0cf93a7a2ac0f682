"""The standalone offline verifier: its own hashing, notes and canonical form, held to
the specs' vectors and to the service's own implementation."""

from __future__ import annotations

import ast
import base64
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import offline
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.note import sign_note
from ledger.offline import BundleError, open_checkpoint, parse_vkey, root_from_inclusion
from ledger.signing import Signer
from tests.unit.test_canonical import astral_keys, json_values
from tests.unit.test_merkle_vectors import LOCAL, SHARED, params, shared_params
from tests.vectors_path import shared_vectors_missing

NEUMANN_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
NEUMANN_NOTE = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_the_module_imports_nothing_but_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(Path(offline.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}  # fmt: skip
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                 and node.module}  # fmt: skip
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}


def test_it_stays_small_enough_to_read_in_one_sitting() -> None:
    assert len(Path(offline.__file__).read_text().splitlines()) < 750


# -- keys and notes --------------------------------------------------------------------


def test_the_go_sumdb_note_example_key_parses_with_its_key_id() -> None:
    key = parse_vkey(NEUMANN_VKEY)
    assert (key.name, key.key_id_hex) == ("PeterNeumann", "c74f20a3")


def test_the_go_sumdb_note_example_signature_verifies() -> None:
    text, signatures = NEUMANN_NOTE.split("\n\n")
    offline._check_signatures(text + "\n", signatures.rstrip("\n").split("\n"), (parse_vkey(NEUMANN_VKEY),))


def test_the_go_sumdb_note_example_with_one_changed_word_does_not_verify() -> None:
    text, signatures = NEUMANN_NOTE.split("\n\n")
    changed = text.replace("problem,", "problems,") + "\n"
    with pytest.raises(BundleError, match="the one there does not verify"):
        offline._check_signatures(changed, signatures.rstrip("\n").split("\n"), (parse_vkey(NEUMANN_VKEY),))


def test_a_checkpoint_with_a_line_that_is_no_signature_is_refused(signer: Signer) -> None:
    note = sign_checkpoint(Checkpoint(signer.name, 7, bytes(32)), signer).decode() + "NOTICE: entries withdrawn\n"
    with pytest.raises(BundleError, match="not a signature line"):
        open_checkpoint(note, parse_vkey(signer.verifier.vkey))


def test_a_witness_cosignature_line_is_skipped(signer: Signer) -> None:
    witness = Signer.generate("witness.example.org")
    note = sign_checkpoint(Checkpoint(signer.name, 7, bytes(32)), signer).decode()
    cosigned = note + note.splitlines()[-1].replace(signer.name, witness.name) + "\n"
    assert open_checkpoint(cosigned, parse_vkey(signer.verifier.vkey)).size == 7


@pytest.mark.parametrize(
    ("vkey", "complaint"),
    [
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumann+c74f20a3+AhpjZAcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not an Ed25519 key"),
        ("PeterNeumann+c74f20a3", "of the form"),
        ("PeterNeumann+c74f20a3+ARpc2Qc!", "not valid base64"),
    ],
)
def test_a_malformed_verifier_key_is_refused_saying_why(vkey: str, complaint: str) -> None:
    with pytest.raises(BundleError, match=complaint):
        parse_vkey(vkey)


def test_a_checkpoint_signed_by_the_service_opens_with_its_published_key(signer: Signer) -> None:
    note = sign_checkpoint(Checkpoint(signer.name, 7, bytes(range(32))), signer).decode()
    opened = open_checkpoint(note, parse_vkey(signer.verifier.vkey))
    assert (opened.origin, opened.size, opened.root) == (signer.name, 7, bytes(range(32)))


def test_a_checkpoint_with_a_changed_size_does_not_open(signer: Signer) -> None:
    note = sign_checkpoint(Checkpoint(signer.name, 7, bytes(32)), signer).decode().replace("\n7\n", "\n8\n", 1)
    with pytest.raises(BundleError, match="no valid signature"):
        open_checkpoint(note, parse_vkey(signer.verifier.vkey))


@pytest.mark.parametrize("size", ["\u0663", "07", str(2**64)], ids=["arabic-indic-digit", "leading-zero", "2^64"])
def test_a_checkpoint_whose_size_is_not_plain_decimal_does_not_open(signer: Signer, size: str) -> None:
    body = f"{signer.name}\n{size}\n{base64.b64encode(bytes(32)).decode()}\n"
    note = sign_note(body, [signer]).encode().decode()
    with pytest.raises(BundleError, match="tree size is not a decimal number"):
        open_checkpoint(note, parse_vkey(signer.verifier.vkey))


def test_a_checkpoint_of_another_key_does_not_open(signer: Signer) -> None:
    other = Signer.generate(signer.name)
    note = sign_checkpoint(Checkpoint(signer.name, 7, bytes(32)), other).decode()
    with pytest.raises(BundleError, match="no valid signature"):
        open_checkpoint(note, parse_vkey(signer.verifier.vkey))


# -- RFC 9162 inclusion proofs: the transparency-dev/merkle cases -------------------------


def _inclusion_holds(path: Path) -> tuple[bool, bool]:
    case = json.loads(path.read_text())

    def b64(text: str) -> bytes:
        return base64.b64decode(text)

    try:
        proof = [b64(h) for h in case["proof"] or []]
        holds = root_from_inclusion(case["leafIdx"], case["treeSize"], b64(case["leafHash"]), proof) == b64(
            case["root"]
        )
    except BundleError:
        holds = False
    return holds, not case["wantErr"]


@pytest.mark.parametrize("path", params(LOCAL, "inclusion"))
def test_local_inclusion_vector(path: Path) -> None:
    holds, expected = _inclusion_holds(path)
    assert holds == expected


@pytest.mark.parametrize("path", shared_params("inclusion"))
def test_shared_inclusion_vector(path: Path | None) -> None:
    if path is None:
        shared_vectors_missing(SHARED)
    holds, expected = _inclusion_holds(path)
    assert holds == expected


# -- canonical form --------------------------------------------------------------------


@settings(max_examples=300)
@given(json_values)
def test_its_canonical_form_equals_rfc8785(value: Any) -> None:
    assert offline._canonical(value) == rfc8785.dumps(value)


@given(st.dictionaries(astral_keys, st.integers(0, 9), min_size=2, max_size=6))
def test_keys_beyond_the_bmp_sort_by_utf16_code_units(value: dict[str, Any]) -> None:
    assert offline._canonical(value) == rfc8785.dumps(value)
