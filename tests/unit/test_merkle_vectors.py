"""The inclusion and consistency test cases of transparency-dev/merkle, as data files.

Each JSON file is one case; ``wantErr: true`` marks a mutated proof a verifier must
reject. The copies under ``tests/vectors/merkle`` always run; the full set in
``../shared/vectors/merkle`` runs when that folder exists, and its absence fails under
``CI=true``. The ``subtree*`` folders hold another API's cases and are not read.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ledger import merkle
from ledger.errors import VerificationError
from tests.vectors_path import LOCAL_VECTORS, SHARED_VECTORS, shared_vectors_missing

LOCAL = LOCAL_VECTORS / "merkle"
SHARED = SHARED_VECTORS / "merkle"
KINDS = ("inclusion", "consistency")
SHARED_MINIMUM = 150  # the set holds 196 cases; fewer means it was truncated


def cases(base: Path, kind: str) -> list[Path]:
    return sorted((base / kind).rglob("*.json"))


def params(base: Path, kind: str) -> list[Any]:
    return [pytest.param(path, id=path.relative_to(base).as_posix()) for path in cases(base, kind)]


def shared_params(kind: str) -> list[Any]:
    if not SHARED.is_dir():
        return [pytest.param(None, id=f"{kind}-missing")]
    return params(SHARED, kind)


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def check_inclusion(case: dict[str, Any]) -> None:
    proof = [b64(h) for h in case["proof"] or []]
    merkle.verify_inclusion(case["leafIdx"], case["treeSize"], b64(case["leafHash"]), proof, b64(case["root"]))


def check_consistency(case: dict[str, Any]) -> None:
    proof = [b64(h) for h in case["proof"] or []]
    merkle.verify_consistency(case["size1"], case["size2"], b64(case["root1"]), b64(case["root2"]), proof)


CHECKS = {"inclusion": check_inclusion, "consistency": check_consistency}


def run_case(path: Path, kind: str) -> None:
    case = json.loads(path.read_text())
    if case["wantErr"]:
        with pytest.raises(VerificationError):
            CHECKS[kind](case)
    else:
        CHECKS[kind](case)


# -- the copies kept in the project ---------------------------------------------------------------


@pytest.mark.parametrize("path", params(LOCAL, "inclusion"))
def test_local_inclusion_vector(path: Path) -> None:
    run_case(path, "inclusion")


@pytest.mark.parametrize("path", params(LOCAL, "consistency"))
def test_local_consistency_vector(path: Path) -> None:
    run_case(path, "consistency")


@pytest.mark.parametrize("kind", KINDS)
def test_local_vectors_hold_happy_paths_and_mutations(kind: str) -> None:
    wanted = [json.loads(path.read_text())["wantErr"] for path in cases(LOCAL, kind)]
    assert wanted.count(False) >= 3
    assert wanted.count(True) >= 5


def test_local_vectors_keep_their_licence() -> None:
    assert "Apache License" in (LOCAL / "LICENSE").read_text()


# -- the full shared set ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", shared_params("inclusion"))
def test_shared_inclusion_vector(path: Path | None) -> None:
    if path is None:
        shared_vectors_missing(SHARED)
    run_case(path, "inclusion")


@pytest.mark.parametrize("path", shared_params("consistency"))
def test_shared_consistency_vector(path: Path | None) -> None:
    if path is None:
        shared_vectors_missing(SHARED)
    run_case(path, "consistency")


def test_shared_vectors_are_complete() -> None:
    if not SHARED.is_dir():
        shared_vectors_missing(SHARED)
    assert sum(len(cases(SHARED, kind)) for kind in KINDS) >= SHARED_MINIMUM


def test_local_vectors_are_unchanged_copies_of_shared_ones() -> None:
    if not SHARED.is_dir():
        shared_vectors_missing(SHARED)
    for kind in KINDS:
        for path in cases(LOCAL, kind):
            assert path.read_bytes() == (SHARED / path.relative_to(LOCAL)).read_bytes(), path


# -- what a missing shared folder does -------------------------------------------------------------


def test_missing_shared_vectors_skip_outside_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="shared test vectors not found"):
        shared_vectors_missing(tmp_path / "missing")


def test_missing_shared_vectors_fail_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        shared_vectors_missing(tmp_path / "missing")
