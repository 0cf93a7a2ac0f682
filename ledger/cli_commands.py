"""The commands of ``policy-ledger`` that open the log's database or reach a service.

ledger/cli.py parses the command line and imports this module only for these commands,
so that offline verification starts without loading the database drivers.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger import exporting
from ledger.auditing import audit_leaves, checkpoint_size
from ledger.bundle import Selection, encode
from ledger.checkpoint import Checkpoint
from ledger.config import Config, load_signer
from ledger.demo import record_story
from ledger.errors import InvalidInput, NotFound
from ledger.foi import CATEGORIES
from ledger.logs import configure_logging
from ledger.offline import BundleError, key_and_term
from ledger.projector import rebuild, rebuild_processes
from ledger.remote import audit_url
from ledger.schemas import parse_time
from ledger.signing import Verifier
from ledger.store import Store, in_memory, open_store
from ledger.store.base import sqlite_path
from ledger.terminal import clear_line, progress
from ledger.tokens import TokenRecord, check_name, check_role, hash_token, new_token
from ledger.verify import TrustedKey, key_terms

__all__ = ["COMMANDS"]

SMALL_LOG = 20_000
Command = Callable[[argparse.Namespace, Config], Coroutine[Any, Any, int]]


async def _migrate(args: argparse.Namespace, config: Config) -> int:
    store = await open_store(config.database_url)
    try:
        applied = await store.migrate()
    finally:
        await store.close()
    print(f"applied {', '.join(applied)}" if applied else "database is up to date")
    return 0


async def _keys(args: argparse.Namespace, config: Config) -> int:
    existed = config.signing_key_file.exists()
    signer = load_signer(config, create=args.keys_command == "generate")
    if args.keys_command == "generate":
        state = "exists already" if existed else "created (mode 0600)"
        print(f"key file {config.signing_key_file} {state}", file=sys.stderr)
    print(signer.verifier.vkey)
    return 0


async def _verify(args: argparse.Namespace, config: Config) -> int:
    keys = [_given_key(v) for v in args.vkeys] if args.vkeys else None
    saved = args.checkpoint.read_bytes() if args.checkpoint and args.checkpoint.exists() else None
    remote = args.url is not None
    if remote and not args.url.startswith(("http://", "https://")):
        raise InvalidInput(f"--url {args.url!r} must be the service's address, e.g. https://ledger.example.org")
    note, checkpoint = await (_verify_url(args, keys, saved) if remote else _verify_local(args, config, keys, saved))
    clear_line()
    if checkpoint is None or note is None:
        print("OK: the log is empty")
        return 0
    if args.checkpoint:
        args.checkpoint.write_bytes(note)
    extends = f"; it extends your saved checkpoint of size {checkpoint_size(saved)}" if saved else ""
    print(f"OK: all {checkpoint.size} events of {checkpoint.origin} verified against its signed checkpoint{extends}")
    return 0


def _given_key(text: str) -> TrustedKey:
    """A key given as ``VKEY[@SEQ]`` (or a file holding the key): trusted from that seq on."""
    try:
        vkey, from_seq = key_and_term(text)
    except BundleError as e:
        raise InvalidInput(str(e)) from None
    return TrustedKey(Verifier.from_vkey(vkey), from_seq)


async def _verify_local(
    args: argparse.Namespace, config: Config, keys: list[TrustedKey] | None, saved: bytes | None
) -> tuple[bytes | None, Checkpoint | None]:
    keys = keys or [TrustedKey(load_signer(config, create=False).verifier)]
    store = await open_store(config.database_url, create=False)
    try:
        if pending := await store.pending_migrations():
            raise NotFound(f"the database holds no log, or an older one ({len(pending)} migrations to apply): check"
                           " LEDGER_DATABASE_URL, or run 'policy-ledger migrate'")  # fmt: skip
        note, size = await store.latest_checkpoint(), await store.log_size()
        workers = args.workers or (1 if size < SMALL_LOG else None)  # worker start-up outweighs a small log
        origin = keys[0].verifier.name
        stated = [TrustedKey(Verifier.from_vkey(row.vkey), row.from_seq) for row in await store.keys()]
        keys = list(key_terms(stated, keys))  # each key only for the events of its term
        checkpoint = await audit_leaves(store.iter_leaves(), origin, keys, latest=note, trusted=saved,
                                        workers=workers, progress=progress(size))  # fmt: skip
    finally:
        await store.close()
    return note, checkpoint


async def _verify_url(
    args: argparse.Namespace, keys: list[TrustedKey] | None, saved: bytes | None
) -> tuple[bytes | None, Checkpoint | None]:
    if keys is None:
        print("warning: no --key given; trusting the keys the server publishes", file=sys.stderr)
    found = await audit_url(args.url, keys, trusted=saved, workers=args.workers, progress=progress(0))
    return found.note, found.checkpoint


async def _export(args: argparse.Namespace, config: Config) -> int:
    if bool(args.start) != bool(args.end):
        raise InvalidInput("--from and --to go together: the time range is from <= recorded_at < to")
    selection = Selection(
        "policy" if args.policy is not None else "range" if args.start else "log",
        policy_id=args.policy,
        start=_time(args.start),
        end=_time(args.end),
    )
    release = CATEGORIES if "all" in args.release else tuple(args.release)
    if args.output != "-":
        keep_apart(
            Path(args.output), {"the log's key": config.signing_key_file, "the log's database": _file_of(config)}
        )
    signer = load_signer(config, create=False)
    store = await open_store(config.database_url, create=False)
    try:
        await store.migrate()
        bundle = await exporting.export(store, signer, selection, release, {"id": args.by, "role": "admin"},
                                        datetime.now(UTC))  # fmt: skip
    finally:
        await store.close()
    data = encode(bundle, compress=not args.no_compress)
    if args.output == "-":
        sys.stdout.buffer.write(data)
    else:
        await asyncio.to_thread(Path(args.output).write_bytes, data)
        print(f"wrote {len(bundle['events'])} events ({len(data):,} bytes) to {args.output}; "
              f"check it with: policy-ledger verify --bundle {args.output} --key '{signer.verifier.vkey}'",
              file=sys.stderr)  # fmt: skip
    return 0


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as e:
        raise InvalidInput(str(e)) from None


async def _demo(args: argparse.Namespace, config: Config) -> int:
    configure_logging(config.log_level)  # the writer logs; keep its lines to the configured level
    store = await open_store(config.database_url)  # first: no key is made for a database that cannot be
    try:
        await store.migrate()
        recorded = await record_story(store, load_signer(config))
    finally:
        await store.close()
    print(f"recorded {len(recorded)} events of the seed story; check them with 'policy-ledger verify'")
    return 0


async def _rebuild(args: argparse.Namespace, config: Config) -> int:
    store = await open_store(config.database_url, create=False)
    try:
        await store.migrate()
        rebuilt = await rebuild(store, processes=args.processes or rebuild_processes())
    finally:
        await store.close()
    print(f"rebuilt the projections from {rebuilt.events:,} events in {rebuilt.seconds:.2f} s"
          f" ({rebuilt.rate:,.0f} events/s)")  # fmt: skip
    return 0


async def _tokens(args: argparse.Namespace, config: Config) -> int:
    store = await open_store(config.database_url, create=args.tokens_command == "create")
    try:
        await store.migrate()
        return await TOKEN_ACTIONS[args.tokens_command](store, args)
    finally:
        await store.close()


async def _token_create(store: Store, args: argparse.Namespace) -> int:
    secret, token_id = new_token()
    record = TokenRecord(token_id, check_name(args.name), check_role(args.role), hash_token(secret), created_at="")
    await store.add_token(record)
    print(f"token {token_id} for {args.name} ({args.role}); the secret is shown only now:", file=sys.stderr)
    print(secret)
    return 0


async def _token_list(store: Store, args: argparse.Namespace) -> int:
    for t in await store.tokens():
        print(
            f"{t.id}  {t.role:<16}  {t.name:<24}  created {t.created_at}"
            + (f"  REVOKED {t.revoked_at}" if t.revoked_at else "")
        )
    return 0


async def _token_revoke(store: Store, args: argparse.Namespace) -> int:
    if not await store.revoke_token(args.token_id):
        raise NotFound(f"no active token with id {args.token_id}; see 'policy-ledger tokens list'")
    print(f"token {args.token_id} revoked")
    return 0


TOKEN_ACTIONS: dict[str, Callable[[Store, argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "create": _token_create,
    "list": _token_list,
    "revoke": _token_revoke,
}


COMMANDS: dict[str, Command] = {
    "tokens": _tokens,
    "migrate": _migrate,
    "keys": _keys,
    "verify": _verify,
    "demo": _demo,
    "rebuild": _rebuild,
    "export": _export,
}


def keep_apart(output: Path, kept: Mapping[str, Path | None]) -> None:
    """Refuse to write ``output`` over a file that must be kept: the log's key or database, an input."""
    for what, path in kept.items():
        if path is not None and output.exists() and path.exists() and output.samefile(path):
            raise InvalidInput(f"{output} is {what}; write to another file")


def _file_of(config: Config) -> Path | None:
    """The SQLite file of the log, if it is in one."""
    url = config.database_url
    return Path(sqlite_path(url)) if url.startswith("sqlite:") and not in_memory(url) else None
