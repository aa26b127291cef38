"""``cloisonne data s3 up|down|status|project``: the per-project S3 store from the command line."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from .layout import layout
from .s3 import DEFAULT_BASE_PORT, S3Error, S3Store, StorePorts, workspace_env


def _store(args: argparse.Namespace) -> S3Store:
    return S3Store(
        args.s3_root or layout(args.state)["s3"],
        host=args.host,
        ports=StorePorts(args.base_port),
    )


def cmd_up(args: argparse.Namespace) -> int:
    store = _store(args)
    store.start()
    print(f"S3 at {store.endpoint_url} (pid {store.pid()}, log {store.log_file})")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    _store(args).stop()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    store = _store(args)
    pid = store.pid()
    print(f"running, pid {pid}, {store.endpoint_url}" if pid else "stopped")
    return 0 if pid else 3


def cmd_project(args: argparse.Namespace) -> int:
    store = _store(args)
    if store.pid() is None:
        print("error: the S3 store is not running (cloisonne data s3 up)", file=sys.stderr)
        return 1
    credential = store.ensure_project(args.project)
    env = workspace_env(credential, args.endpoint_url or store.endpoint_url)
    if args.format == "json":
        print(json.dumps(env, indent=2, sort_keys=True))
    else:
        print("\n".join(f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items())))
    return 0


def add_s3_parser(sub: argparse._SubParsersAction) -> None:
    s3 = sub.add_parser("s3", help="the per-project S3 store (SeaweedFS)")
    s3.add_argument("--s3-root", help="store directory (default state/s3)")
    s3.add_argument("--host", default="127.0.0.1", help="address every store port binds to")
    s3.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT,
                    help="S3 is this port; master, volume, filer, admin the next four; "
                         "each gRPC port is its HTTP port + 10000")  # fmt: skip
    cmds = s3.add_subparsers(dest="s3_command", required=True)
    cmds.add_parser("up", help="start the store (idempotent)").set_defaults(func=_guard(cmd_up))
    cmds.add_parser("down", help="stop it by PID").set_defaults(func=_guard(cmd_down))
    cmds.add_parser("status", help="running or not").set_defaults(func=cmd_status)
    project = cmds.add_parser("project", help="create a project's bucket and credential, live")
    project.add_argument("project")
    project.add_argument("--format", choices=["env", "json"], default="env")
    project.add_argument("--endpoint-url", help="the URL workspaces use (default: the store's)")
    project.set_defaults(func=_guard(cmd_project))


def _guard(func):  # noqa: ANN001, ANN202
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (S3Error, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run
