"""`cloisonne packages`: load the wheelhouse, edit project allow-lists, show what is allowed.

add     copy a release's files into the air-gapped wheelhouse (from a folder brought in)
allow   add names (with optional version ranges) to a project's allow-list, live
list    the site's and a project's allow-lists
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..core.packages import AllowListError, parse_entry, parse_list
from ..core.projects import ProjectError, project_from_properties
from ..hub.config import setting
from ..packages.settings import split_allow
from ..packages.wheelhouse import Wheelhouse, WheelhouseError


def _state() -> Path:
    return Path(setting(os.environ, "CLOISONNE_STATE"))


def cmd_add(args: argparse.Namespace) -> int:
    house = Wheelhouse(Path(args.wheelhouse) if args.wheelhouse else
                       _state() / "packages" / "wheelhouse")  # fmt: skip
    try:
        added = house.add(args.requirement, Path(args.from_dir))
    except WheelhouseError as exc:
        print(f"cloisonne packages add: {exc}", file=sys.stderr)
        return 1
    for name in added:
        print(f"added {name}")
    print("Workspaces can install it once it is on the site's or their project's allow-list.")
    return 0


class _HubAPI:
    """The hub's REST API with the operations token of the state folder (as `cloisonne down`)."""

    def api(self, method: str, path: str, **kw: Any) -> Any:  # noqa: ANN401 - a Response
        import requests

        token = (_state() / "ops_token").read_text().strip()
        url = setting(os.environ, "CLOISONNE_BIND_URL").rstrip("/")
        return requests.request(method, f"{url}/hub/api{path}", timeout=30,
                                headers={"Authorization": f"token {token}"}, **kw)  # fmt: skip


def _hub() -> _HubAPI:
    return _HubAPI()


def cmd_allow(args: argparse.Namespace) -> int:
    try:
        entries = [parse_entry(e) for e in args.entries]
    except AllowListError as exc:
        print(f"cloisonne packages allow: {exc}", file=sys.stderr)
        return 1
    hub = _hub()
    got = hub.api("GET", f"/groups/{args.project}")
    if got.status_code == 404:
        print(f"cloisonne packages allow: there is no project {args.project!r}", file=sys.stderr)
        return 1
    got.raise_for_status()
    properties = dict(got.json().get("properties") or {})
    current = {e.name: e for e in parse_list(properties.get("packages") or [])}
    for entry in entries:
        current[entry.name] = entry  # a new range replaces the old one
    properties["packages"] = [str(e) for e in current.values()]
    try:
        project_from_properties(args.project, properties)
    except ProjectError as exc:
        print(f"cloisonne packages allow: {exc}", file=sys.stderr)
        return 1
    put = hub.api("PUT", f"/groups/{args.project}/properties", json=properties)
    put.raise_for_status()
    print(f"project {args.project} may now install: {', '.join(properties['packages'])}")
    print(
        "In effect now. projects.yaml is applied again at the next hub start: add the same "
        "entries to the project's `packages` there to keep them."
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    site = split_allow(setting(os.environ, "CLOISONNE_PACKAGES_ALLOW"))
    print("site:", " ".join(site) or "-")
    if args.project:
        got = _hub().api("GET", f"/groups/{args.project}")
        got.raise_for_status()
        print(f"{args.project}:", " ".join(got.json()["properties"].get("packages") or []) or "-")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "packages",
        help="package proxy: wheelhouse and allow-lists",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    psub = p.add_subparsers(dest="packages_command", required=True)
    a = psub.add_parser("add", help="load files into the air-gapped wheelhouse")
    a.add_argument("requirement", help="e.g. numpy==2.1.3")
    a.add_argument("--from-dir", required=True, help="folder holding the wheels")
    a.add_argument("--wheelhouse", help="the proxy's wheelhouse (default: "
                   "<state>/packages/wheelhouse; in the chart's pod /var/lib/cloisonne-packages/"
                   "wheelhouse)")  # fmt: skip
    a.set_defaults(func=cmd_add)
    a = psub.add_parser("allow", help="add packages to a project's allow-list")
    a.add_argument("project")
    a.add_argument("entries", nargs="+", help="name or name<range>, e.g. 'pandas>=2.2,<3'")
    a.set_defaults(func=cmd_allow)
    a = psub.add_parser("list", help="show the allow-lists")
    a.add_argument("project", nargs="?")
    a.set_defaults(func=cmd_list)
