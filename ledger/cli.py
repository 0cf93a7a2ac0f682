"""The ``policy-ledger`` command line: its arguments, and what each command runs.

Offline checks (``verify --bundle``/``--receipt``, ``report``) need only the standalone
verifier; every other command's code is in ledger/cli_commands.py, imported when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ledger import event_loop, offline
from ledger.config import Config
from ledger.errors import InvalidInput, LedgerError, VerificationError
from ledger.foi import CATEGORIES
from ledger.report import csv_report, html_report
from ledger.store import in_memory
from ledger.terminal import clear_line
from ledger.tokens import ROLES

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policy-ledger",
        description="A tamper-evident, event-sourced audit ledger for device-security policy.",
        epilog="Configuration comes from LEDGER_DATABASE_URL, LEDGER_ORIGIN, LEDGER_SIGNING_KEY_FILE, "
        "LEDGER_HOST, LEDGER_PORT, LEDGER_LOG_LEVEL, LEDGER_DB_POOL_SIZE, LEDGER_WORKERS, LEDGER_READ_CACHE and"
        " LEDGER_IDEMPOTENCY_HOURS; flags override them.",
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
    serve.add_argument(
        "--workers", type=_workers, help="processes serving the port, each with its own writer (default 1)"
    )

    sub.add_parser("migrate", help="apply the database migrations not yet applied")

    keys = sub.add_parser("keys", help="the log's signing key")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    keys_sub.add_parser("generate", help="create the key file (mode 0600) if it does not exist; print the verifier key")
    keys_sub.add_parser("show", help="print the verifier key (name+keyid+key) that checks the log's signatures")

    tokens = sub.add_parser("tokens", help="bearer tokens for the HTTP API (stored as hashes only)")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    create = tokens_sub.add_parser("create", help="make a token and print its secret, once")
    create.add_argument("--role", required=True, choices=ROLES, help="what the token may do")
    create.add_argument(
        "--name", required=True,
        help="who holds it: a post, a staff number or a service's name, not a person's name (it signs every event "
        "recorded with the token, in clear and for good)",
    )  # fmt: skip
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
        metavar="VKEY[@SEQ]",
        help="a trusted verifier key, or a file holding it; repeat it for each key the log has had, each with @SEQ,"
        " the seq from which the log used it (GET /v1/log/keys): each is trusted only from there to the next key's"
        " (a log also narrows each to the term it lists); default: the key of --key-file, or with --url the served"
        " keys",
    )
    verify.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="a checkpoint saved earlier: the log (local or --url) must extend it; the new one is saved there",
    )
    source = verify.add_mutually_exclusive_group()
    source.add_argument("--url", help="verify the log served by a policy-ledger service at this URL instead")
    source.add_argument("--bundle", type=Path, metavar="FILE", help="verify an export bundle offline (needs --key)")
    source.add_argument("--receipt", type=Path, metavar="FILE", help="verify a receipt offline (needs --key)")
    verify.add_argument("--workers", type=_workers, help="processes checking signatures (default: one per core)")

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
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write it ('-': stdout)")
    export.add_argument(
        "--no-compress", action="store_true", help="write plain JSON (default: gzip-compressed JSON, as .json.gz)"
    )

    report = sub.add_parser("report", help="verify a bundle offline, then write it as readable HTML and CSV")
    report.add_argument("--bundle", type=Path, required=True, metavar="FILE", help="the export bundle")
    report.add_argument(
        "--key", required=True, action="append", metavar="VKEY[@SEQ]",
        help="the log's verifier key, or a file holding it; repeat it for each key the log has had, each with @SEQ,"
        " the seq from which the log used it: each is trusted only until the next key's",
    )  # fmt: skip
    report.add_argument("--html", type=Path, metavar="FILE", help="write the printable HTML report here")
    report.add_argument("--csv", type=Path, metavar="FILE", help="write one CSV line per decision here")

    sub.add_parser("demo", help="record the seed story (the 2023 TikTok ban and its exemptions) through the service")
    rebuild = sub.add_parser(
        "rebuild", help="replay the log into new projections that replace the stored ones; prints events/s"
    )
    rebuild.add_argument(
        "--processes", type=_workers,
        help="processes that share out the streams, on PostgreSQL (default: one more than the CPUs, since each"
        " also waits for the database; at most 8); SQLite uses one",
    )  # fmt: skip
    return parser


def _workers(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 64")
    return int(text)


def _verify_offline(args: argparse.Namespace) -> int:
    if not args.vkeys:
        raise InvalidInput("offline verification needs --key VKEY: the log's verifier key, from a source you trust")
    if args.checkpoint:  # not silently left unchecked: the caller would think it was
        raise InvalidInput("--checkpoint is checked against a whole log, which a bundle or receipt does not hold: "
                           "drop it here, or verify the log with --url URL --checkpoint FILE")  # fmt: skip
    argv = ["--bundle", str(args.bundle)] if args.bundle else ["--receipt", str(args.receipt)]
    return offline.main([*argv, *(arg for vkey in args.vkeys for arg in ("--key", vkey))])


def _report(args: argparse.Namespace) -> int:
    try:
        with args.bundle.open("rb") as f:
            raw = f.read(offline.MAX_DOCUMENT_BYTES + 1)  # no more: the file could be endless (a device, a pipe)
    except OSError as e:
        raise InvalidInput(f"cannot read the bundle {args.bundle}: {e.strerror}") from None
    try:
        keys = [offline.trusted_key(text) for text in args.key]
        bundle = offline.verify_bundle(raw, keys)
    except offline.BundleError as e:
        raise VerificationError(f"the bundle does not verify, so no report was written: {e}") from None
    from ledger.cli_commands import keep_apart

    for output in (args.html, args.csv):
        if output is not None:
            keep_apart(output, {"the bundle": args.bundle})
            if not output.parent.is_dir():  # found before either report is written
                raise InvalidInput(f"{output}: no such folder to write the report in")
    if args.html and args.csv and args.html.resolve() == args.csv.resolve():
        raise InvalidInput("--html and --csv name the same file; give each its own")
    if args.html:
        args.html.write_text(html_report(bundle, args.bundle.name), encoding="utf-8")
    if args.csv:
        args.csv.write_text(csv_report(bundle), encoding="utf-8")
    print(offline.verdict_of_bundle(bundle))
    return 0


_KEEPING = ("migrate", "tokens", "demo", "rebuild", "export")  # commands whose work stays in the database


def _refuse_unless_utf8(arg: str) -> None:
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 reach Python as lone surrogates
        raise InvalidInput(f"the argument {arg.encode('utf-8', 'replace').decode()!r} is not UTF-8 text") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        for arg in sys.argv[1:] if argv is None else argv:
            _refuse_unless_utf8(arg)
        config = Config.from_env().with_overrides(
            database_url=args.database_url,
            origin=args.origin,
            signing_key_file=args.signing_key_file,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            workers=getattr(args, "workers", None) if args.command == "serve" else None,
        )
        if not 1 <= config.port <= 65535:
            raise InvalidInput(f"--port {config.port} is not a port number (1 to 65535)")
        if in_memory(config.database_url) and args.command in _KEEPING:
            raise InvalidInput(f"{config.database_url!r} is an in-memory database, which would be gone when this "
                               "command ends; name a file, e.g. sqlite:///policy-ledger.db")  # fmt: skip
        if args.command == "report":
            return _report(args)
        if args.command == "verify" and (args.bundle or args.receipt):
            return _verify_offline(args)
        if args.command == "serve":  # runs its own loops (one per worker) and handles SIGTERM
            from api.serving import run

            return run(config)
        from ledger.cli_commands import COMMANDS

        return event_loop.run(COMMANDS[args.command](args, config))
    except VerificationError as e:
        clear_line()
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    except LedgerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a path that is a directory, missing, unreadable, ...
        print(f"error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # never a traceback to a user; the message says what broke
        print(f"error: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        return 2
