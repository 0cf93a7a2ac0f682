"""``policy-ledger demo`` and ``rebuild``, run as a user runs them, on an SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ledger.config import Config, load_signer
from ledger.seed import story
from ledger.service import LedgerService
from ledger.store.sqlite import SqliteStore
from ledger.writer import Writer
from tests.e2e.conftest import environment


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env |= {"LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
            "LEDGER_SIGNING_KEY_FILE": str(tmp_path / "ledger.key")}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "ledger", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def test_demo_records_the_seed_story_and_says_what_it_recorded(tmp_path: Path) -> None:
    result = cli(tmp_path, "demo")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["seq", "0", "2023-03-16", "policy.issued", "policy/POL-2023-TIKTOK"]
    assert lines[-1] == "recorded 6 events of the seed story; check them with 'policy-ledger verify'"
    assert cli(tmp_path, "verify").returncode == 0


def test_demo_refuses_a_database_that_already_holds_the_story(tmp_path: Path) -> None:
    assert cli(tmp_path, "demo").returncode == 0
    again = cli(tmp_path, "demo")
    assert again.returncode == 2
    assert "already holds the whole seed story" in again.stderr
    assert "Traceback" not in again.stderr


async def test_a_demo_cut_short_is_taken_up_where_it_stopped(tmp_path: Path) -> None:
    store = await SqliteStore.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    await store.migrate()
    writer = Writer(store, load_signer(Config(database_url="", signing_key_file=tmp_path / "ledger.key")))
    await writer.start()
    service = LedgerService(store, writer)
    for step in story()[:2]:  # as far as a demo got before Ctrl-C
        await service.execute(step.command, step.actor.id, step.actor.role)
    await writer.close()
    await store.close()
    result = cli(tmp_path, "demo")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split()[:2] == ["seq", "2"]
    assert "recorded 4 events" in result.stdout
    assert cli(tmp_path, "verify").returncode == 0


def test_rebuild_replays_the_log_and_prints_its_rate(tmp_path: Path) -> None:
    assert cli(tmp_path, "demo").returncode == 0
    result = cli(tmp_path, "rebuild")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("rebuilt the projections from 6 events in ")
    assert result.stdout.rstrip().endswith("events/s)")


def test_rebuild_shares_out_the_streams_from_the_command_line_too(tmp_path: Path, database_url: str) -> None:
    env = environment(tmp_path, database_url, 8080)  # no server: any valid port
    run = [sys.executable, "-m", "ledger"]
    assert subprocess.run([*run, "demo"], env=env, cwd=tmp_path, capture_output=True, timeout=60).returncode == 0
    ask = [*run, "verify"]
    result = subprocess.run([*run, "rebuild", "--processes", "2"], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("rebuilt the projections from 6 events in ")
    assert subprocess.run(ask, env=env, cwd=tmp_path, capture_output=True, timeout=60).returncode == 0
