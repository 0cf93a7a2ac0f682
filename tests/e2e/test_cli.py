"""The policy-ledger command line, run as a user runs it, on an SQLite log."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.config import Config, load_signer
from ledger.events import Draft, check_draft, seal_event
from ledger.store.sqlite import SqliteStore
from ledger.writer import Writer


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
           "LEDGER_SIGNING_KEY_FILE": str(tmp_path / "ledger.key")}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "ledger", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


async def append_events(tmp_path: Path, count: int) -> None:
    config = Config(database_url=f"sqlite:///{tmp_path / 'ledger.db'}", signing_key_file=tmp_path / "ledger.key")
    store = await SqliteStore.open(config.database_url)
    writer = Writer(store, load_signer(config, create=False))
    await writer.start()
    for i in range(count):
        await writer.append(Draft(f"policy/P-{i}", "policy.issued", {"i": i}, {"id": "o", "role": "policy-officer"}))
    await writer.close()
    await store.close()


def tamper(tmp_path: Path, *statements: str) -> None:
    conn = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    for sql in statements:
        conn.execute(sql)
    conn.close()


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A key and a migrated database, made once by the command line as a user makes them."""
    folder = tmp_path_factory.mktemp("migrated")
    assert cli(folder, "keys", "generate").returncode == 0
    assert cli(folder, "migrate").returncode == 0
    return folder


@pytest.fixture
def migrated_copy(tmp_path: Path, migrated: Path) -> Path:
    """A copy of ``migrated`` of this test's own."""
    for made in migrated.iterdir():
        shutil.copy2(made, tmp_path / made.name)  # the key file keeps its mode (0600)
    return tmp_path


@pytest.fixture
async def log(migrated_copy: Path) -> Path:
    """A log of six events."""
    await append_events(migrated_copy, 6)
    return migrated_copy


def test_keys_generate_prints_the_verifier_key_and_keeps_the_key_private(tmp_path: Path) -> None:
    result = cli(tmp_path, "keys", "generate")
    assert result.stdout.startswith("policy-ledger.localhost/device-policy+")
    assert (tmp_path / "ledger.key").stat().st_mode & 0o777 == 0o600


def test_migrate_twice_says_the_database_is_up_to_date(tmp_path: Path) -> None:
    assert cli(tmp_path, "migrate").stdout.startswith("applied 0001_log")
    assert cli(tmp_path, "migrate").stdout.strip() == "database is up to date"


def test_verify_passes_an_untouched_log_and_saves_its_checkpoint(log: Path) -> None:
    result = cli(log, "verify", "--checkpoint", "saved.txt")
    assert result.returncode == 0
    assert result.stdout.startswith("OK: all 6 events of policy-ledger.localhost/device-policy verified")
    assert (log / "saved.txt").read_bytes().startswith(b"policy-ledger.localhost/device-policy\n6\n")


def test_verify_names_the_seq_of_an_altered_event_and_exits_1(log: Path) -> None:
    tamper(log, "UPDATE events SET leaf = replace(leaf, '\"i\":2', '\"i\":7') WHERE seq = 2")
    result = cli(log, "verify")
    assert (result.returncode, result.stderr.strip()) == (1, "FAILED: seq 2: event signature does not verify")


def test_verify_with_a_saved_checkpoint_finds_a_rolled_back_log(log: Path) -> None:
    assert cli(log, "verify", "--checkpoint", "saved.txt").returncode == 0
    tamper(log, "DELETE FROM events WHERE seq >= 4", "DELETE FROM checkpoints WHERE size > 4")
    result = cli(log, "verify", "--checkpoint", "saved.txt")
    assert result.returncode == 1
    assert "saved checkpoint covers 6 events but the log holds only 4" in result.stderr


def test_verify_with_a_saved_checkpoint_finds_a_log_rolled_back_to_nothing(log: Path) -> None:
    assert cli(log, "verify", "--checkpoint", "saved.txt").returncode == 0
    tamper(log, "DELETE FROM events", "DELETE FROM checkpoints")
    result = cli(log, "verify", "--checkpoint", "saved.txt")
    assert result.returncode == 1
    assert "the log is empty, yet you saved its checkpoint of size 6" in result.stderr


def test_verify_refuses_a_latest_checkpoint_older_than_the_saved_one_and_keeps_the_saved_one(log: Path) -> None:
    assert cli(log, "verify", "--checkpoint", "saved.txt").returncode == 0
    saved = (log / "saved.txt").read_bytes()
    tamper(log, "DELETE FROM checkpoints WHERE size > 4")  # the events stay: only the newer checkpoints go
    result = cli(log, "verify", "--checkpoint", "saved.txt")
    assert result.returncode == 1
    assert "the latest checkpoint (size 4) is older than the one you saved (size 6)" in result.stderr
    assert (log / "saved.txt").read_bytes() == saved


@pytest.mark.parametrize("url", ["", "ledger.example.org"], ids=["empty", "no-scheme"])
def test_verify_refuses_a_url_that_is_no_address_rather_than_checking_the_local_log(log: Path, url: str) -> None:
    result = cli(log, "verify", "--url", url)
    assert result.returncode == 2
    assert "must be the service's address" in result.stderr


@pytest.mark.parametrize(
    ("url", "said"),
    [("sqlite:///", "in-memory database"), ("sqlite:///:memory:", "in-memory database"),
     ("sqlite:ledger.db", "must be sqlite:///relative.db")],
    ids=["empty-path", "memory", "no-slashes"],
)  # fmt: skip
def test_a_command_refuses_a_database_that_would_keep_nothing_or_is_misspelt(tmp_path: Path, url: str,
                                                                             said: str) -> None:  # fmt: skip
    env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_SIGNING_KEY_FILE": str(tmp_path / "ledger.key")}
    result = subprocess.run([sys.executable, "-m", "ledger", "demo"], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert said in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_refuses_to_make_a_new_key_for_a_log_that_holds_events(log: Path, workers: str) -> None:
    env = {**os.environ, "LEDGER_DATABASE_URL": f"sqlite:///{log / 'ledger.db'}", "LEDGER_PORT": "18999",
           "LEDGER_SIGNING_KEY_FILE": str(log / "typo.key"), "LEDGER_WORKERS": workers}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "ledger", "serve"], env=env, cwd=log, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert "the log holds 6 events, but there is no key at" in result.stderr
    assert not (log / "typo.key").exists()
    assert cli(log, "verify").returncode == 0  # no second key was recorded


@pytest.mark.parametrize("command", [["demo"], ["serve"]])
def test_a_database_in_a_folder_that_is_not_there_is_refused_in_one_line(tmp_path: Path, command: list[str]) -> None:
    env = {**os.environ, "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'missing' / 'ledger.db'}",
           "LEDGER_SIGNING_KEY_FILE": str(tmp_path / "ledger.key"), "LEDGER_PORT": "18999"}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "ledger", *command], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot open SQLite database")
    assert "Traceback" not in result.stderr


def test_an_argument_that_is_not_utf8_is_refused_saying_so(tmp_path: Path) -> None:
    env = {**os.environ, "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}"}
    args = [sys.executable, "-m", "ledger", "tokens", "create", "--role", "admin", "--name", b"caf\xe9"]
    result = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "is not UTF-8 text" in result.stderr


def test_a_key_file_that_is_a_directory_is_named_in_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "ledger.key").mkdir()
    result = cli(tmp_path, "keys", "show")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("ledger.key: Is a directory")


def test_verify_of_a_database_without_a_log_says_so(tmp_path: Path) -> None:
    assert cli(tmp_path, "keys", "generate").returncode == 0
    sqlite3.connect(tmp_path / "ledger.db").close()
    result = cli(tmp_path, "verify")
    assert result.returncode == 2
    assert "the database holds no log" in result.stderr


@pytest.mark.parametrize(
    "command",
    [["verify"], ["export", "--all", "-o", "out.bundle"], ["rebuild"], ["tokens", "list"], ["tokens", "revoke", "t1"]],
    ids=["verify", "export", "rebuild", "tokens-list", "tokens-revoke"],
)
def test_a_command_that_reads_a_log_refuses_a_database_file_that_is_not_there_and_makes_none(
    tmp_path: Path, command: list[str]
) -> None:
    assert cli(tmp_path, "keys", "generate").returncode == 0
    result = cli(tmp_path, *command)
    assert result.returncode == 2
    assert f"there is no SQLite database at {tmp_path / 'ledger.db'}" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.key"]


def test_verify_takes_the_trusted_key_from_a_file_as_report_does(log: Path) -> None:
    (log / "log.vkey").write_text(cli(log, "keys", "show").stdout)
    result = cli(log, "verify", "--key", "log.vkey")
    assert result.returncode == 0, result.stderr


def test_verify_reads_an_event_stored_as_text_instead_of_bytes(log: Path) -> None:
    tamper(log, "UPDATE events SET leaf = CAST(leaf AS TEXT) WHERE seq = 3")
    assert cli(log, "verify").returncode == 0


def test_verify_without_a_key_tells_the_user_what_to_do(tmp_path: Path) -> None:
    result = cli(tmp_path, "verify")
    assert (result.returncode, result.stderr.strip()) == (
        2,
        f"error: no signing key at {tmp_path / 'ledger.key'}; run 'policy-ledger keys generate'",
    )


def test_tokens_create_prints_the_secret_once_and_list_never_shows_it(tmp_path: Path) -> None:
    created = cli(tmp_path, "tokens", "create", "--role", "auditor", "--name", "nao")
    secret = created.stdout.strip()
    listed = cli(tmp_path, "tokens", "list").stdout
    assert secret.startswith("plt_")
    assert "auditor" in listed
    assert "nao" in listed
    assert secret not in listed


def test_tokens_revoke_marks_the_token_revoked(tmp_path: Path) -> None:
    cli(tmp_path, "tokens", "create", "--role", "service", "--name", "mdm")
    token_id = cli(tmp_path, "tokens", "list").stdout.split()[0]
    assert cli(tmp_path, "tokens", "revoke", token_id).stdout.strip() == f"token {token_id} revoked"
    assert "REVOKED" in cli(tmp_path, "tokens", "list").stdout


def test_tokens_create_refuses_an_unknown_role(tmp_path: Path) -> None:
    result = cli(tmp_path, "tokens", "create", "--role", "minister", "--name", "x")
    assert result.returncode == 2
    assert "invalid choice: 'minister'" in result.stderr


def test_serve_refuses_a_worker_count_it_cannot_use(tmp_path: Path) -> None:
    refused = cli(tmp_path, "serve", "--workers", "0")
    assert refused.returncode == 2
    assert "--workers: '0' is not a whole number from 1 to 64" in refused.stderr


async def rotate(log: Path) -> str:
    """Move the log (6 events) to a new key file and append 2 events under it; the old verifier key."""
    old = cli(log, "keys", "show").stdout.strip()
    (log / "ledger.key").rename(log / "old.key")
    assert cli(log, "keys", "generate").returncode == 0
    await append_events(log, 2)
    return old


async def test_verify_after_a_key_rotation_passes_with_each_key_the_log_has_had(log: Path) -> None:
    old = await rotate(log)
    result = cli(log, "verify", "--key", old, "--key", cli(log, "keys", "show").stdout.strip())
    assert result.returncode == 0, result.stderr
    assert "all 8 events" in result.stdout


async def test_verify_trusts_a_key_given_with_a_seq_only_from_that_seq(log: Path) -> None:
    old = await rotate(log)
    result = cli(log, "verify", "--key", f"{old}@0", "--key", cli(log, "keys", "show").stdout.strip() + "@7")
    assert result.returncode == 1
    assert "seq 6: signed by key" in result.stderr
    assert "before it was in use (from seq 7)" in result.stderr


def test_verify_refuses_a_key_whose_seq_is_not_a_whole_number(log: Path) -> None:
    result = cli(log, "verify", "--key", cli(log, "keys", "show").stdout.strip() + "@first")
    assert result.returncode == 2
    assert "after @ comes the seq from which the log used the key, a whole number, not 'first'" in result.stderr


async def test_verify_fails_an_event_signed_by_the_old_key_after_the_log_moved_on_from_it(log: Path) -> None:
    old = await rotate(log)
    leaked = load_signer(Config(signing_key_file=log / "old.key"), create=False)
    store = await SqliteStore.open(f"sqlite:///{log / 'ledger.db'}")
    async with store.write() as tx:  # an attacker holding the old key and the database
        head = await tx.head([])
        draft = Draft("policy/P-9", "policy.issued", {"i": 9}, {"id": "o", "role": "policy-officer"})
        place = {"seq": 8, "version": 1, "recorded_at": head.last_recorded_at, "prev": head.last_leaf_hash}
        forged = seal_event(check_draft(draft, leaked.name), leaked, **place)  # type: ignore[arg-type]
        await tx.append([forged], [], [], None)
    await store.close()
    result = cli(log, "verify", "--key", old, "--key", cli(log, "keys", "show").stdout.strip())
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"FAILED: seq 8: signed by key {leaked.key_id.hex()}, which the log moved on from at seq 6"
    )
