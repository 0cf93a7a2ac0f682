"""The factory on its own: it opens, migrates and closes its log when not handed one."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from contextlib import closing

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import STORE, WRITER
from ledger.config import Config
from ledger.errors import InvalidInput
from ledger.signing import Signer
from ledger.store import Store
from tests.api.conftest import noted


async def test_without_a_store_it_migrates_creates_the_key_and_starts_the_writer(config: Config) -> None:
    app = create_app(config)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/readyz")).status == 200
        assert await app[STORE].pending_migrations() == []
        recorded = await app[WRITER].append(noted(0))
        assert (await client.get(f"/v1/log/events/{recorded.seq}")).status == 200
    assert stat.S_IMODE(config.signing_key_file.stat().st_mode) == 0o600
    assert not app[WRITER].running


async def test_on_shutdown_the_writer_commits_what_is_queued(config: Config) -> None:
    app = create_app(config)
    async with TestClient(TestServer(app)) as client:
        await client.get("/readyz")
        writer = app[WRITER]
        pending = [asyncio.ensure_future(writer.append(noted(n))) for n in range(20)]
        await asyncio.sleep(0)  # every append is queued; none has committed yet
        assert not any(p.done() for p in pending)
    assert [p.result().seq for p in pending] == list(range(20))


@pytest.mark.parametrize(("hours", "kept"), [(24, [("new",)]), (0, [("new",), ("old",)])])
async def test_at_start_up_it_forgets_idempotency_keys_older_than_configured(
    config: Config, hours: int, kept: list[tuple[str]]
) -> None:
    async with TestClient(TestServer(create_app(config))) as client:  # migrates the new database
        await client.get("/readyz")
    with closing(sqlite3.connect(config.database_url.removeprefix("sqlite:///"))) as db, db:
        db.execute("INSERT INTO idempotency (scope, key, request_hash, seq, created_at)"
                   " VALUES ('t', 'old', 'h', 0, '2020-01-01T00:00:00.000Z')")  # fmt: skip
        db.execute("INSERT INTO idempotency (scope, key, request_hash, seq) VALUES ('t', 'new', 'h', 1)")
    async with TestClient(TestServer(create_app(config.with_overrides(idempotency_hours=hours)))) as client:
        await client.get("/readyz")
        for _ in range(50):  # the forgetting runs beside the requests
            await asyncio.sleep(0.1)
            with closing(sqlite3.connect(config.database_url.removeprefix("sqlite:///"))) as db:
                if (keys := db.execute("SELECT key FROM idempotency ORDER BY key").fetchall()) == kept:
                    break
    assert keys == kept


async def test_a_key_file_for_another_origin_stops_start_up(config: Config) -> None:
    config.signing_key_file.write_text(Signer.generate("other.example/log").skey)
    runner = web.AppRunner(create_app(config))
    with pytest.raises(InvalidInput, match=r"other\.example/log"):
        await runner.setup()


def test_a_store_without_a_writer_is_refused(config: Config, store: Store) -> None:
    with pytest.raises(ValueError, match="both"):
        create_app(config, store=store)
