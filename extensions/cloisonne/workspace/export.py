"""Ask for files to leave the workspace, from a notebook or a terminal (inside a workspace).

    from cloisonne.workspace.export import request_export, my_exports
    request_export(["results/table1.csv", "fig1.png"], why="Table 1 and Figure 1 of the paper")

    $ cloisonne export request results/table1.csv fig1.png --why "Table 1 and Figure 1"
    $ cloisonne export list
    $ cloisonne export resubmit ID results/table1.csv --comment "small cells suppressed"

Paths are resolved inside the home (``..`` and symbolic links that lead out of it are refused),
each file is read once and its SHA-256 computed on the bytes sent (the snapshot the reviewers
see), and the request goes to the cloisonne service with the workspace's own token, which fixes
the user and the project. Standard library only: it runs in every kernel.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.values import parse_size

DEFAULT_MAX_FILE = 100 * 1024**2


class ExportError(RuntimeError):
    """The request could not be made; the message says why and what to do."""


@dataclass(frozen=True)
class Snapshot:
    name: str
    data: bytes
    sha256: str


def _home() -> Path:
    return Path(os.environ.get("HOME") or Path.home()).resolve()


def resolve_in_home(path: str | os.PathLike[str], home: Path | None = None,
                    cwd: Path | None = None) -> tuple[Path, str]:  # fmt: skip
    """The real file and its name in the request (relative to the home). Refuses anything
    outside the home, through ``..`` or a symbolic link, and anything not a regular file."""
    home = (home or _home()).resolve()
    given = Path(path)
    full = given if given.is_absolute() else (cwd or Path.cwd()) / given
    real = full.resolve()
    if not real.is_relative_to(home):
        raise ExportError(f"{path}: only files in your home ({home}) can be exported")
    if not real.is_file():
        raise ExportError(f"{path}: not a file" if real.exists() else f"{path}: no such file")
    return real, real.relative_to(home).as_posix()


def snapshot(paths: list[str], max_file: int = DEFAULT_MAX_FILE, home: Path | None = None,
             cwd: Path | None = None) -> list[Snapshot]:  # fmt: skip
    if not paths:
        raise ExportError("name at least one file to export")
    out = []
    for p in paths:
        real, name = resolve_in_home(p, home, cwd)
        size = real.stat().st_size
        if size > max_file:
            raise ExportError(f"{p}: {size} bytes, over the airlock's cap of {max_file} bytes")
        data = real.read_bytes()
        out.append(Snapshot(name, data, hashlib.sha256(data).hexdigest()))
    return out


def _call(method: str, path: str, body: Any = None, timeout: float = 300) -> Any:
    base = os.environ.get("CLOISONNE_SERVICE_URL")
    token = os.environ.get("JUPYTERHUB_API_TOKEN")
    if not base or not token:
        raise ExportError("not in a workspace: CLOISONNE_SERVICE_URL and JUPYTERHUB_API_TOKEN "
                          "are set only inside one")  # fmt: skip
    request = urllib.request.Request(
        base.rstrip("/") + "/" + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc).get("message", exc.reason)
        except (ValueError, AttributeError):
            message = exc.reason
        raise ExportError(f"the airlock refused the request ({exc.code}): {message}") from None
    except urllib.error.URLError as exc:
        raise ExportError(f"the airlock service cannot be reached: {exc.reason}") from None


def _max_file() -> int:
    """The service's cap (the hub passes CLOISONNE_AIRLOCK_MAX_FILE to workspaces), parsed as
    the service parses it."""
    raw = os.environ.get("CLOISONNE_AIRLOCK_MAX_FILE", "")
    try:
        return parse_size(raw) if raw else DEFAULT_MAX_FILE
    except ValueError as exc:
        raise ExportError(f"CLOISONNE_AIRLOCK_MAX_FILE: {exc}") from None


def request_export(paths: str | list[str], why: str, *, cwd: Path | None = None) -> dict[str, Any]:
    """Submit files for export; returns the request (id, state, files with SHA-256, checks).
    Relative paths are taken from ``cwd`` (default: the current directory)."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not why or not why.strip():
        raise ExportError("say what the files are and why they need to leave (why=...)")
    body = {"justification": why, "files": _files_body([os.fspath(p) for p in paths], cwd)}
    return _call("POST", "api/airlock/requests", body)


def _files_body(paths: list[str], cwd: Path | None) -> list[dict[str, str]]:
    files = snapshot([os.fspath(p) for p in paths], _max_file(), cwd=cwd)
    return [{"name": f.name, "sha256": f.sha256, "content": base64.b64encode(f.data).decode()}
            for f in files]  # fmt: skip


def resubmit_export(
    request_id: str, paths: list[str] | None = None, comment: str = "", *, cwd: Path | None = None
) -> dict[str, Any]:
    """Send a returned request again; with ``paths``, its files are replaced by these (read
    now). The checks run again and a new round of review starts."""
    body: dict[str, Any] = {"comment": comment}
    if paths:
        body["files"] = _files_body(paths, cwd)
    return _call("POST", f"api/airlock/requests/{request_id}/resubmit", body)


def my_exports() -> list[dict[str, Any]]:
    return _call("GET", "api/airlock/requests")["requests"]


def export_status(request_id: str) -> dict[str, Any]:
    return _call("GET", f"api/airlock/requests/{request_id}")


def withdraw_export(request_id: str) -> dict[str, Any]:
    return _call("POST", f"api/airlock/requests/{request_id}/withdraw", {})


# -- `cloisonne export` ---------------------------------------------------------------------


def _print_request(r: dict[str, Any]) -> None:
    print(f"{r['id']}  {r['state']}  ({r['project']}, round {r['round']})")
    for f in r["files"]:
        check = f.get("check_status") or "-"
        print(f"  {f['name']}  {f['size']} bytes  sha256 {f['sha256']}  checks: {check}")


def cmd_export(args: argparse.Namespace) -> int:
    try:
        if args.export_command == "request":
            result = request_export(args.files, args.why)
            if result.get("duplicate"):
                print("The same request is already open:")
            _print_request(result)
        elif args.export_command == "list":
            for r in my_exports():
                _print_request(r)
        elif args.export_command == "status":
            result = export_status(args.id)
            print(json.dumps(result, indent=2) if args.json else "", end="")
            if not args.json:
                _print_request(result)
        elif args.export_command == "withdraw":
            _print_request(withdraw_export(args.id))
        elif args.export_command == "resubmit":
            _print_request(resubmit_export(args.id, args.files, args.comment))
    except ExportError as exc:
        print(f"cloisonne export: {exc}", file=sys.stderr)
        return 1
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("export", help="ask for files to leave the workspace (the airlock)")
    esub = p.add_subparsers(dest="export_command", required=True)
    r = esub.add_parser("request", help="submit files for export")
    r.add_argument("files", nargs="+", metavar="FILE")
    r.add_argument("--why", required=True, help="what the files are and why they must leave")
    esub.add_parser("list", help="your export requests and their states")
    s = esub.add_parser("status", help="one request")
    s.add_argument("id")
    s.add_argument("--json", action="store_true")
    w = esub.add_parser("withdraw", help="withdraw a request not yet decided")
    w.add_argument("id")
    rs = esub.add_parser("resubmit", help="send a returned request again, files replaced if given")
    rs.add_argument("id")
    rs.add_argument("files", nargs="*", metavar="FILE")
    rs.add_argument("--comment", default="", help="what changed")
    p.set_defaults(func=cmd_export)
