"""The ``policy-ledger`` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger import exporting, offline
from ledger.auditing import audit_leaves, checkpoint_size
from ledger.bundle import CATEGORIES, Selection, encode
from ledger.checkpoint import Checkpoint
from ledger.config import Config, load_signer
from ledger.demo import record_story
from ledger.errors import InvalidInput, LedgerError, NotFound, VerificationError
from ledger.logs import configure_logging
from ledger.projector import rebuild
from ledger.remote import audit_url
from ledger.report import csv_report, html_report
from ledger.schemas import parse_time
from ledger.signing import Verifier
from ledger.store import Store, open_store
from ledger.tokens import ROLES, TokenRecord, check_role, hash_token, new_token
from ledger.verify import TrustedKey

__all__ = ["main"]

SMALL_LOG = 20_000
Command = Callable[[argparse.Namespace, Config], Coroutine[Any, Any, int]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policy-ledger",
        description="A tamper-evident, event-sourced audit ledger for device-security policy.",
        epilog="Configuration comes from LEDGER_DATABASE_URL, LEDGER_ORIGIN, LEDGER_SIGNING_KEY_FILE, "
        "LEDGER_HOST, LEDGER_PORT and LEDGER_LOG_LEVEL; flags override them.",
    )
    parser.add_argument(
        "--database-url", help="sqlite:///file.db (default: sqlite:///policy-ledger.db) or postgresql://…"
    )
    parser.add_argument("--origin", help="the log's origin, e.g. ledger.example.gov.uk/device-policy")
    parser.add_argument("--key-file", type=Path, dest="signing_key_file", help="the log's private key file")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTP service (migrates the database first)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")

    sub.add_parser("migrate", help="apply the database migrations not yet applied")

    keys = sub.add_parser("keys", help="the log's signing key")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    keys_sub.add_parser("generate", help="create the key file (mode 0600) if it does not exist; print the verifier key")
    keys_sub.add_parser("show", help="print the verifier key (name+keyid+key) that checks the log's signatures")

    tokens = sub.add_parser("tokens", help="bearer tokens for the HTTP API (stored as hashes only)")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    create = tokens_sub.add_parser("create", help="make a token and print its secret, once")
    create.add_argument("--role", required=True, choices=ROLES, help="what the token may do")
    create.add_argument("--name", required=True, help="who holds it, e.g. an officer's id or a service's name")
    tokens_sub.add_parser("list", help="list tokens: id, name, role, created, revoked")
    revoke = tokens_sub.add_parser("revoke", help="revoke a token by its id; it stops working at once")
    revoke.add_argument("token_id", metavar="ID")

    verify = sub.add_parser(
        "verify", help="check every event, signature, link and the checkpoint of the log (local database or --url)"
    )
    verify.add_argument(
        "--key",
        action="append",
        dest="vkeys",
        metavar="VKEY",
        help="a trusted verifier key (repeatable); default: the key of --key-file, or with --url the served keys",
    )
    verify.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="a checkpoint saved earlier: the log must extend it; the new one is saved there",
    )
    verify.add_argument("--url", help="verify the log served by a policy-ledger service at this URL instead")
    verify.add_argument("--bundle", type=Path, metavar="FILE", help="verify an export bundle offline (needs --key)")
    verify.add_argument("--receipt", type=Path, metavar="FILE", help="verify a receipt offline (needs --key)")
    verify.add_argument("--workers", type=int, help="processes checking signatures (default: one per core)")

    export = sub.add_parser(
        "export", help="write a bundle of decisions, with proofs, that anyone can verify offline (docs/bundles.md)"
    )
    chosen = export.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--policy", metavar="ID", help="one policy with all its exemptions")
    chosen.add_argument("--from", dest="start", metavar="TIME", help="streams with a decision from TIME (RFC 3339)")
    chosen.add_argument("--all", action="store_true", help="the whole log")
    export.add_argument("--to", dest="end", metavar="TIME", help="with --from: up to TIME, exclusive")
    export.add_argument(
        "--release",
        action="append",
        default=[],
        choices=[*CATEGORIES, "all"],
        help="a category of sealed fields to release (repeatable); the others are withheld under their FOI section",
    )
    export.add_argument("--by", default="operator", help="who exports, named in the manifest (default: operator)")
    export.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="where to write it; a name ending .gz is compressed"
    )

    report = sub.add_parser("report", help="verify a bundle offline, then write it as readable HTML and CSV")
    report.add_argument("--bundle", type=Path, required=True, metavar="FILE", help="the export bundle")
    report.add_argument("--key", required=True, metavar="VKEY", help="the log's verifier key, or a file holding it")
    report.add_argument("--html", type=Path, metavar="FILE", help="write the printable HTML report here")
    report.add_argument("--csv", type=Path, metavar="FILE", help="write one CSV line per decision here")

    sub.add_parser("demo", help="record the seed story (the 2023 TikTok ban and its exemptions) through the service")
    sub.add_parser("rebuild", help="drop the stored projections and rebuild them from the log; prints events/s")
    return parser


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
    if args.bundle or args.receipt:
        return _verify_offline(args)
    keys = [TrustedKey(Verifier.from_vkey(v)) for v in args.vkeys] if args.vkeys else None
    saved = args.checkpoint.read_bytes() if args.checkpoint and args.checkpoint.exists() else None
    note, checkpoint = await (_verify_url(args, keys, saved) if args.url else _verify_local(args, config, keys, saved))
    _clear_progress()
    if checkpoint is None or note is None:
        print("OK: the log is empty")
        return 0
    if args.checkpoint:
        args.checkpoint.write_bytes(note)
    extends = f"; it extends your saved checkpoint of size {checkpoint_size(saved)}" if saved else ""
    print(f"OK: all {checkpoint.size} events of {checkpoint.origin} verified against its signed checkpoint{extends}")
    return 0


async def _verify_local(
    args: argparse.Namespace, config: Config, keys: list[TrustedKey] | None, saved: bytes | None
) -> tuple[bytes | None, Checkpoint | None]:
    keys = keys or [TrustedKey(load_signer(config, create=False).verifier)]
    store = await open_store(config.database_url)
    try:
        note, size = await store.latest_checkpoint(), await store.log_size()
        workers = args.workers or (1 if size < SMALL_LOG else None)  # worker start-up outweighs a small log
        origin = keys[0].verifier.name
        checkpoint = await audit_leaves(store.iter_leaves(), origin, keys, latest=note, trusted=saved,
                                        workers=workers, progress=_progress(size))  # fmt: skip
    finally:
        await store.close()
    return note, checkpoint


async def _verify_url(
    args: argparse.Namespace, keys: list[TrustedKey] | None, saved: bytes | None
) -> tuple[bytes | None, Checkpoint | None]:
    if keys is None:
        print("warning: no --key given; trusting the keys the server publishes", file=sys.stderr)
    found = await audit_url(args.url, keys, trusted=saved, workers=args.workers, progress=_progress(0))
    return found.note, found.checkpoint


def _verify_offline(args: argparse.Namespace) -> int:
    if not args.vkeys:
        raise InvalidInput("offline verification needs --key VKEY: the log's verifier key, from a source you trust")
    argv = ["--bundle", str(args.bundle)] if args.bundle else ["--receipt", str(args.receipt)]
    return offline.main([*argv, "--key", args.vkeys[0]])


async def _export(args: argparse.Namespace, config: Config) -> int:
    if bool(args.start) != bool(args.end):
        raise InvalidInput("--from needs --to: the time range is from <= recorded_at < to")
    selection = Selection(
        "policy" if args.policy else "range" if args.start else "log",
        policy_id=args.policy,
        start=_time(args.start),
        end=_time(args.end),
    )
    release = CATEGORIES if "all" in args.release else tuple(args.release)
    signer = load_signer(config, create=False)
    store = await open_store(config.database_url)
    try:
        await store.migrate()
        bundle = await exporting.export(store, signer, selection, release, {"id": args.by, "role": "admin"},
                                        datetime.now(UTC))  # fmt: skip
    finally:
        await store.close()
    data = encode(bundle, compress=args.output.endswith(".gz"))
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


async def _report(args: argparse.Namespace, config: Config) -> int:
    try:
        bundle = offline.verify_bundle(args.bundle.read_bytes(), offline.parse_vkey(offline.read_key(args.key)))
    except offline.BundleError as e:
        raise VerificationError(f"the bundle does not verify, so no report was written: {e}") from None
    if args.html:
        args.html.write_text(html_report(bundle, args.bundle.name), encoding="utf-8")
    if args.csv:
        args.csv.write_text(csv_report(bundle), encoding="utf-8")
    print(offline.verdict_of_bundle(bundle))
    return 0


async def _demo(args: argparse.Namespace, config: Config) -> int:
    configure_logging(config.log_level)  # the writer logs; keep its lines to the configured level
    signer = load_signer(config)
    store = await open_store(config.database_url)
    try:
        await store.migrate()
        recorded = await record_story(store, signer)
    finally:
        await store.close()
    print(f"recorded {len(recorded)} events of the seed story; check them with 'policy-ledger verify'")
    return 0


async def _rebuild(args: argparse.Namespace, config: Config) -> int:
    store = await open_store(config.database_url)
    try:
        await store.migrate()
        rebuilt = await rebuild(store)
    finally:
        await store.close()
    print(f"rebuilt the projections from {rebuilt.events:,} events in {rebuilt.seconds:.2f} s"
          f" ({rebuilt.rate:,.0f} events/s)")  # fmt: skip
    return 0


async def _tokens(args: argparse.Namespace, config: Config) -> int:
    store = await open_store(config.database_url)
    try:
        await store.migrate()
        return await TOKEN_ACTIONS[args.tokens_command](store, args)
    finally:
        await store.close()


async def _token_create(store: Store, args: argparse.Namespace) -> int:
    secret, token_id = new_token()
    await store.add_token(TokenRecord(token_id, args.name, check_role(args.role), hash_token(secret), created_at=""))
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


def _progress(total: int) -> Callable[[int], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int) -> None:
        filled = done * 40 // max(total, done, 1)
        counted = f"{done}/{total}" if total else str(done)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (40 - filled)}] {counted} events checked")
        sys.stderr.flush()

    return show


def _clear_progress() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")


COMMANDS: dict[str, Command] = {
    "tokens": _tokens,
    "migrate": _migrate,
    "keys": _keys,
    "verify": _verify,
    "demo": _demo,
    "rebuild": _rebuild,
    "export": _export,
    "report": _report,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = Config.from_env().with_overrides(
            database_url=args.database_url,
            origin=args.origin,
            signing_key_file=args.signing_key_file,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
        )
        if args.command == "serve":  # aiohttp runs its own loop and handles SIGTERM
            from api.app import run

            run(config)
            return 0
        return asyncio.run(COMMANDS[args.command](args, config))
    except VerificationError as e:
        _clear_progress()
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    except LedgerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # never a traceback to a user; the message says what broke
        print(f"error: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        return 2
