"""`policy-ledger verify --url`: an oversight body checks a running service over real HTTP."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.config import load_signer
from tests.e2e.conftest import Server
from tests.e2e.test_serve import append

pytestmark = pytest.mark.slow


def verify(server: Server, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run(
        [sys.executable, "-m", "ledger", "verify", "--url", server.url, *args],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


async def test_verify_url_passes_then_fails_once_a_stored_event_is_altered(server: Server, tmp_path: Path) -> None:
    await append(server.config, range(8))
    vkey = load_signer(server.config, create=False).verifier.vkey
    passed = verify(server, tmp_path, "--key", vkey, "--checkpoint", "saved.txt")
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout.startswith("OK: all 8 events of ledger.e2e.example/device-policy verified")
    assert (tmp_path / "saved.txt").exists()

    database = server.config.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(database, isolation_level=None) as conn:
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute(
            "UPDATE events SET leaf = CAST(replace(leaf, 'Ban number 5', 'Ban number 6') AS BLOB) WHERE seq = 5"
        )
    failed = verify(server, tmp_path, "--key", vkey, "--checkpoint", "saved.txt")
    assert failed.returncode == 1
    assert failed.stderr.startswith("FAILED: seq 5: ")


async def test_verify_url_without_a_key_warns_that_it_trusts_the_server(server: Server, tmp_path: Path) -> None:
    await append(server.config, range(2))
    result = verify(server, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "trusting the keys the server publishes" in result.stderr
