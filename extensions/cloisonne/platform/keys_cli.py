"""``cloisonne keys``: the site's key service — status, master rotation, a project's shredding.

The keeper (PKCS#11 token or development file keyring) is chosen by ``CLOISONNE_KEYS_BACKEND``
and its companions (``cloisonne.keys.settings``); the wrapped project keys live in the state
folder's key store. Exit status 0 on success, 2 on a key service error (the message says why).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..data.cli import DEFAULT_STATE, layout
from ..keys.masters import KeyError_
from ..keys.service import KeyService
from ..keys.settings import KeySettings


def _service(args: argparse.Namespace) -> KeyService:
    return KeySettings.from_env(os.environ).service(layout(args.state)["keys"])


def cmd_keys(args: argparse.Namespace) -> int:
    try:
        service = _service(args)
        if args.keys_command == "status":
            result: object = service.status()
        elif args.keys_command == "rotate":
            result = service.rotate().__dict__
        else:
            if not args.yes:
                warning = (f"cloisonne keys destroy: this makes project {args.project!r}'s data "
                           "and pseudonyms unreadable for ever; add --yes to go on")  # fmt: skip
                print(warning, file=sys.stderr)
                return 2
            result = service.destroy(args.project)
    except KeyError_ as exc:
        print(f"cloisonne keys: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    keys = subparsers.add_parser("keys", help="the site's key service (master key, project keys)")
    keys.add_argument("--state", type=Path, default=DEFAULT_STATE, help="state directory")
    commands = keys.add_subparsers(dest="keys_command", required=True)
    commands.add_parser("status", help="keeper, master versions, projects and their keys")
    commands.add_parser("rotate", help="new master version; re-wrap every key; destroy the old")
    destroy = commands.add_parser("destroy", help="crypto-shred a project's keys (close-out)")
    destroy.add_argument("project")
    destroy.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    keys.set_defaults(func=cmd_keys)
