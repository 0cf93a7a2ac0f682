"""Run as a separate OS process: append COUNT events concurrently, print the seqs acknowledged."""

from __future__ import annotations

import asyncio
import json
import sys

from ledger.events import Draft
from ledger.signing import Signer
from ledger.store.postgres import PostgresStore
from ledger.writer import Writer


async def main(url: str, schema: str, skey: str, count: int, name: str) -> None:
    store = await PostgresStore.open(url, server_settings={"search_path": schema})
    writer = Writer(store, Signer.from_skey(skey), max_batch=16)  # many batches, interleaving
    await writer.start()
    actor = {"id": name, "role": "policy-officer"}
    drafts = [Draft(f"policy/{name}-{i % 10}", "policy.issued", {"i": i}, actor) for i in range(count)]
    events = await asyncio.gather(*(writer.append(d) for d in drafts))
    await writer.close()
    await store.close()
    print(json.dumps([e.seq for e in events]))


if __name__ == "__main__":
    url, schema, skey, count, name = sys.argv[1:]
    asyncio.run(main(url, schema, skey, int(count), name))
