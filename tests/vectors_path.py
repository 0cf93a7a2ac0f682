"""Where the golden vectors are: in this checkout, and in the shared folder beside it.

The shared folder (``../shared/vectors`` next to the repository) holds the full sets; CI
always has it. A checkout without it still runs the copies under ``tests/vectors``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

__all__ = ["LOCAL_VECTORS", "SHARED_VECTORS", "in_ci", "shared_vectors_missing"]

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_VECTORS = REPO_ROOT / "tests" / "vectors"
SHARED_VECTORS = REPO_ROOT.parent / "shared" / "vectors"


def in_ci() -> bool:
    """True under ``CI=true``, where a missing vector set is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() == "true"


def shared_vectors_missing(folder: Path) -> NoReturn:
    """Skip the calling test, or fail it in CI, because ``folder`` does not exist."""
    reason = f"shared test vectors not found at {folder}; only the copies in {LOCAL_VECTORS} were run"
    if in_ci():
        pytest.fail(f"{reason} (CI=true, so this is an error)")
    pytest.skip(reason)
