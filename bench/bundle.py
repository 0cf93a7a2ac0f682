"""Export bundles on PostgreSQL and their offline verification: time and size.

    python -m bench.bundle [--events 10000] [--large 100000] [--url URL]

1. A log of ``--events`` valid policy and exemption events (bench/story_mix.py, sensitive
   fields sealed, disclosures stored) is exported whole, releasing every category
   (``exporting.export`` + JSON encoding, and gzip), then verified offline by
   ``ledger.offline.verify_bundle`` on 2 threads and on 1, three times each (the
   database just written to may still be busy on the same cores: median and best).
2. In a log of ``--large`` events, a time range whose streams hold about ``--events``
   events is exported (each stream in full) and verified: proofs are then deeper and the
   events scattered through the tree.

Beside them: the single-core Ed25519 verify rate of ``cryptography`` (the bound of step 2
of verification), measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import DEFAULT_URL, ORIGIN, scratch_store
from bench.projections import build
from bench.story_mix import SPAN, START, Mix
from ledger import event_loop, exporting
from ledger.bundle import Selection, encode
from ledger.foi import CATEGORIES
from ledger.logs import configure_logging
from ledger.offline import parse_vkey, verify_bundle
from ledger.signing import Signer
from ledger.store.postgres import PostgresStore

BY = {"id": "bench/foi-officer", "role": "auditor"}


def verify_rate(seconds: float = 1.0) -> float:
    """Ed25519 verifications per second on one core, of an event-sized message."""
    key = Ed25519PrivateKey.generate()
    message = b"x" * 700
    signature, public, count = key.sign(message), key.public_key(), 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            public.verify(signature, message)
        count += 200
    return count / (time.perf_counter() - start)


async def measure(store: PostgresStore, signer: Signer, selection: Selection, label: str) -> None:
    started = time.perf_counter()
    document = await exporting.export(store, signer, selection, CATEGORIES, BY, datetime.now(UTC))
    raw = encode(document)
    exported = time.perf_counter() - started
    packed = gzip.compress(raw, compresslevel=6)
    packed_s = time.perf_counter() - started
    key = parse_vkey(signer.verifier.vkey)
    timings: dict[int, list[float]] = {2: [], 1: []}
    for _ in range(3):
        for workers in (2, 1):
            started = time.perf_counter()
            verify_bundle(packed, key, workers=workers)
            timings[workers].append(time.perf_counter() - started)
    events, size = len(document["events"]), document["manifest"]["checkpoint"]["size"]
    print(f"{label}: {events:,} events from a log of {size:,}; {len(document['disclosures']):,} disclosures released")
    print(f"  export        {exported:6.2f} s  ({events / exported:,.0f} events/s); with gzip {packed_s:.2f} s"
          f"   (goal: under 5 s for 10,000 events)")  # fmt: skip
    print(f"  bundle size   {len(raw) / 1e6:6.2f} MB as JSON, {len(packed) / 1e6:.2f} MB gzip-compressed")
    seconds = await asyncio.to_thread(command_line_verify, packed, signer.verifier.vkey)
    print(f"  policy-ledger verify --bundle, a new process with its imports: {seconds:.2f} s")
    for workers, label in ((2, "2 threads"), (1, "1 thread ")):
        median, best = statistics.median(timings[workers]), min(timings[workers])
        print(f"  verify ({label}) median {median:5.2f} s, best {best:5.2f} s of 3  ({events / median:,.0f} events/s)"
              + ("   (goal: under 2 s for 10,000 events)" if workers == 2 else ""))  # fmt: skip


def command_line_verify(packed: bytes, vkey: str) -> float:
    """Seconds for ``policy-ledger verify --bundle`` on the bundle written to a file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bundle.json.gz"
        path.write_bytes(packed)
        started = time.perf_counter()
        command = [sys.executable, "-m", "ledger", "verify", "--bundle", str(path), "--key", vkey]
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - started


def window(mix: Mix, wanted: int) -> Selection:
    """A time range near the end of the log whose recorded events number about ``wanted``."""
    end = START + SPAN
    return Selection("range", start=end - SPAN * (wanted * 0.75 / mix.total), end=end)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000, help="events in the bundle")
    parser.add_argument("--large", type=int, default=100_000, help="events in the larger log (0: skip)")
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL URL (a scratch schema is made and dropped)")
    args = parser.parse_args()
    configure_logging("warning")
    print(f"Ed25519 verify, one core (cryptography): {verify_rate():,.0f}/s")
    runs: list[tuple[int, Any]] = [(args.events, lambda mix: Selection("log"))]
    if args.large:
        runs.append((args.large, lambda mix: window(mix, args.events)))
    for total, select in runs:
        async with scratch_store(args.url) as (store, _):
            signer, mix = Signer.generate(ORIGIN), Mix(total)
            print(f"building a log of {total:,} events …")
            await build(store, mix, chunk=2000, signer=signer)
            label = "whole log" if total == args.events else "a time range of a larger log"
            await measure(store, signer, select(mix), label)


if __name__ == "__main__":
    event_loop.run(main())
