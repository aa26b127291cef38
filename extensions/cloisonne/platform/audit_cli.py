"""``cloisonne audit``: verify the chain, export events as JSON Lines, print the head hash.

The lead wires ``add_parser`` into the ``cloisonne`` command; ``main`` runs it on its own.
The database is given by ``--db`` (a SQLAlchemy URL) or ``CLOISONNE_AUDIT_DB``.

Exit status: 0 when the command succeeded (and, for ``verify``, the chain is sound), 1 when
``verify`` found a bad event, 2 on a usage or database error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from ..audit.chain import canonical
from ..audit.store import AuditStore

DB_ENV = "CLOISONNE_AUDIT_DB"


def parse_since(text: str) -> datetime:
    """An ISO 8601 date or date-time; without a zone it is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 date or time such as 2026-11-29 or 2026-11-29T10:00:00Z, "
            f"got {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _open(args: argparse.Namespace) -> AuditStore:
    url = args.db or os.environ.get(DB_ENV)
    if not url:
        raise SystemExit(f"cloisonne audit: give the database URL with --db or ${DB_ENV}")
    # Never create tables from the CLI: a wrong URL must fail, not start an empty log.
    return AuditStore(url, create=False)


def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    store = _open(args)
    try:
        result = store.verify(expected_head=args.expected_head)
    finally:
        store.close()
    if args.json:
        print(json.dumps(result.__dict__), file=out)
    else:
        print(result.describe(), file=out)
    return 0 if result.ok else 1


def cmd_export(args: argparse.Namespace, out: TextIO) -> int:
    store = _open(args)
    target = out if args.output in (None, "-") else open(args.output, "w", encoding="utf-8")
    count = 0
    try:
        for event in store.iter_events(since=args.since):
            target.write(canonical(event.to_dict()).decode() + "\n")
            count += 1
    finally:
        store.close()
        if target is not out:
            target.close()
    if target is not out:
        print(f"wrote {count} events to {args.output}", file=sys.stderr)
    return 0


def cmd_head(args: argparse.Namespace, out: TextIO) -> int:
    store = _open(args)
    try:
        head = store.head()
    finally:
        store.close()
    if args.json:
        print(json.dumps({"seq": head.seq, "hash": head.hash}), file=out)
    else:
        print(f"{head.seq} {head.hash}", file=out)
    return 0


def cmd_journals(args: argparse.Namespace, out: TextIO) -> int:
    """Workspace journals and how much of each is not in the chain yet (exit 3 if any)."""
    from ..audit.journal import backlog

    store = _open(args)
    try:
        offsets = store.journal_offsets()
    finally:
        store.close()
    journals = backlog(args.dir, offsets)
    rows = [{"journal": j.name, "state": "closed" if j.closed else "open", "bytes": j.size,
             "pending": j.pending, "registered": j.forwarded is not None}
            for j in journals]  # fmt: skip
    pending_total = sum(max(j.pending, 0) for j in journals)
    if args.json:
        print(json.dumps({"journals": rows, "pending_bytes": pending_total}), file=out)
    else:
        for r in rows:
            print(f"{r['journal']}  {r['state']:6}  {r['bytes']:>10} bytes  "
                  f"{r['pending']:>8} not yet in the chain", file=out)  # fmt: skip
        print(f"{len(rows)} journals, {pending_total} bytes not yet forwarded", file=out)
    return 3 if pending_total else 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``audit`` and its subcommands; each sets ``args.func(args, out) -> exit status``."""
    audit = subparsers.add_parser("audit", help="verify, export and anchor the audit log")
    commands = audit.add_subparsers(dest="audit_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", help=f"SQLAlchemy database URL (default: ${DB_ENV})")

    verify = commands.add_parser("verify", help="check the whole chain; name the first bad event")
    common(verify)
    verify.add_argument(
        "--expected-head", metavar="HASH", help="a head hash exported earlier that must be present"
    )
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(func=cmd_verify)

    export = commands.add_parser("export", help="write events as JSON Lines (for a SIEM)")
    common(export)
    export.add_argument(
        "--since", type=parse_since, help="only events at or after this time (ISO 8601)"
    )
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    export.set_defaults(func=cmd_export)

    head = commands.add_parser("head", help="print the head (sequence number and hash)")
    common(head)
    head.add_argument("--json", action="store_true", help="print the head as JSON")
    head.set_defaults(func=cmd_head)

    journals = commands.add_parser(
        "journals", help="workspace audit journals and what is not in the chain yet (exit 3)"
    )
    common(journals)
    journals.add_argument("--dir", required=True,
                          help="the journal folder (<state>/audit-journal)")  # fmt: skip
    journals.add_argument("--json", action="store_true", help="print as JSON")
    journals.set_defaults(func=cmd_journals)
    return audit


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cloisonne")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args, out or sys.stdout)
    except SystemExit:
        raise
    except Exception as exc:  # a database error, shown as one line rather than a traceback
        print(f"cloisonne audit: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
