"""Several OS processes appending to one PostgreSQL log keep it gap-free and verifying."""

from __future__ import annotations

import asyncio
import json
import sys

from ledger import merkle
from ledger.auditing import audit_store
from ledger.signing import Signer
from ledger.verify import TrustedKey
from tests.backends import postgres_backend

COUNT = 150


async def run_appender(url: str, schema: str, signer: Signer, name: str) -> list[int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.store.appender",
        url,
        schema,
        signer.skey,
        str(COUNT),
        name,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    return list(json.loads(out.splitlines()[-1]))


async def test_two_processes_appending_concurrently_share_one_gap_free_log(postgres_url: str, signer: Signer) -> None:
    async with postgres_backend(postgres_url) as backend:
        assert backend.schema is not None
        a, b = await asyncio.gather(
            run_appender(postgres_url, backend.schema, signer, "A"),
            run_appender(postgres_url, backend.schema, signer, "B"),
        )
        assert sorted(a + b) == list(range(2 * COUNT))
        checkpoint = await audit_store(backend.store, signer.name, [TrustedKey(signer.verifier)], workers=1)
        leaves = await backend.store.read_leaves(0, 2 * COUNT)
        assert checkpoint is not None
        assert checkpoint.size == 2 * COUNT
        assert checkpoint.root == merkle.root_from_leaf_hashes([merkle.leaf_hash(r.leaf) for r in leaves])
