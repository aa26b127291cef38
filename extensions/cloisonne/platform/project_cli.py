"""``cloisonne project suspend|resume|extend`` and ``cloisonne projects register``.

An operator's incident response and governance commands. They change the project group's
properties through the hub's REST API with the operations token, so each change is recorded in
the audit log like an admin panel edit (``hub.group_change``, with the properties), and the spawn
gate and the lifecycle watcher act on it. ``suspend`` also stops the project's workspaces at
once rather than waiting for the watcher, and reports how long that took.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..core.governance import ACTIVE, STATE_KEYS, SUSPENDED, parse_date
from ..core.lifecycle import REGISTER_FIELDS, register_entry, servers_to_stop
from ..core.projects import ProjectError, project_from_properties
from ..hub.config import setting
from ..service.lifecycle_watch import (
    HubClient,
    read_projects,
    running_servers,
    stop_all,
    wait_stopped,
)
from .s3_running import running_s3_store


def hub_client(env: dict[str, str] | os._Environ = os.environ) -> HubClient:
    token = env.get("CLOISONNE_ADMIN_TOKEN", "")
    if not token:
        path = Path(setting(env, "CLOISONNE_STATE")) / "ops_token"
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise SystemExit(
                f"cannot read the operations token {path} ({exc.strerror}); run as root on the "
                "hub's machine, or set CLOISONNE_ADMIN_TOKEN"
            ) from None
    return HubClient(setting(env, "CLOISONNE_BIND_URL").rstrip("/") + "/hub/api", token)


def _properties(client: HubClient, project: str) -> dict[str, Any]:
    r = client.call("GET", f"/groups/{project}")
    if r.status_code == 404 or (r.ok and r.json().get("properties", {}).get("kind") != "project"):
        raise SystemExit(f"no project '{project}' on this hub")
    return dict(r.json()["properties"])


def _put(client: HubClient, project: str, properties: dict[str, Any]) -> None:
    try:
        project_from_properties(project, properties)  # never store what a spawn would refuse
    except ProjectError as exc:
        raise SystemExit(str(exc)) from None
    client.call("PUT", f"/groups/{project}/properties", json=properties)


def _hub_db() -> str:
    state = Path(setting(os.environ, "CLOISONNE_STATE"))
    return setting(os.environ, "CLOISONNE_DB_URL") or f"sqlite:///{state / 'jupyterhub.sqlite'}"


def _audit(event: str, project: str, by: str, **fields: Any) -> None:
    """The decision itself (who, why), beside the hub's record of the properties changed."""
    from ..audit.store import AuditStore

    store = AuditStore(_hub_db(), create=False)
    try:
        store.append(event, user=by, project=project, fields=fields)
    finally:
        store.close()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def cmd_suspend(args: argparse.Namespace) -> int:
    client = hub_client()
    props = _properties(client, args.project)
    props.update(state=SUSPENDED, state_why=args.why, state_by=args.by, state_at=_now())
    start = time.monotonic()
    _put(client, args.project, props)
    store = running_s3_store(os.environ)
    frozen = bool(store and store.freeze_project(args.project))  # `resume` re-applies it
    _audit("lifecycle.suspended", args.project, args.by, why=args.why, s3_frozen=frozen)
    today = datetime.datetime.now(datetime.UTC).date()
    projects = {args.project: project_from_properties(args.project, props)}
    orders = servers_to_stop(projects, running_servers(client.active_users()), today)
    stop_all(client, orders, None)  # the hub records each stop (hub.stop)
    wait_stopped(client, args.project)
    took = time.monotonic() - start
    print(f"project {args.project} suspended by {args.by}: {args.why}; "
          f"{len(orders)} workspace(s) stopped in {took:.1f} s")  # fmt: skip
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    client = hub_client()
    props = _properties(client, args.project)
    if props.get("state", ACTIVE) == "closed":
        raise SystemExit(f"project {args.project} is closed; a closed project cannot resume")
    for key in STATE_KEYS:
        props.pop(key, None)
    _put(client, args.project, props)
    store = running_s3_store(os.environ)
    if store is not None and store.is_frozen(args.project):
        store.ensure_project(args.project)  # the same credential, live again
    _audit("lifecycle.resumed", args.project, args.by)
    print(f"project {args.project} resumed by {args.by}")
    return 0


def cmd_extend(args: argparse.Namespace) -> int:
    client = hub_client()
    props = _properties(client, args.project)
    try:
        end = parse_date(args.end, field="end")
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    old = props.get("end", "")
    props["end"] = end.isoformat() if end else ""
    _put(client, args.project, props)
    _audit("lifecycle.extended", args.project, args.by, old_end=old, new_end=props["end"],
           why=args.why)  # fmt: skip
    print(f"project {args.project}: end {old or '(none)'} -> {props['end']} ({args.why})")
    return 0


def cmd_close(args: argparse.Namespace) -> int:
    from .closeout import Closeout

    state = Path(setting(os.environ, "CLOISONNE_STATE"))
    closing = Closeout(state, args.project, hub_client(), _hub_db(), by=args.by, reason=args.why)
    before = closing.load()
    progress = closing.run()
    if before.done == progress.done:
        print(f"project {args.project} was already closed")
    else:
        print(f"project {args.project} closed by {progress.by}; steps run: "
              f"{', '.join(s for s in progress.done if s not in before.done)}")  # fmt: skip
    print(f"  archive: {closing.archive}")
    print(f"  certificate: {progress.results['certify']['certificate']}")
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    client = hub_client()
    today = datetime.datetime.now(datetime.UTC).date()
    rows = [register_entry(p, today) for _, p in sorted(read_projects(client.groups()).items())]
    write_register(rows, args.format, sys.stdout)
    return 0


def write_register(rows: list[dict[str, Any]], fmt: str, out: Any) -> None:
    if fmt == "json":
        json.dump(rows, out, indent=2, ensure_ascii=False)
        out.write("\n")
        return
    writer = csv.DictWriter(out, fieldnames=REGISTER_FIELDS)
    writer.writeheader()
    writer.writerows(rows)


def add_parsers(sub: Any) -> None:
    who = getpass.getuser()
    who = os.environ.get("SUDO_USER", who)
    project = sub.add_parser("project", help="suspend, resume, extend or close a project")
    psub = project.add_subparsers(dest="action", required=True)
    p = psub.add_parser("suspend", help="stop every workspace of a project and refuse spawns")
    p.add_argument("project")
    p.add_argument("--why", required=True, help="the reason, recorded with the suspension")
    p.add_argument("--by", default=who, help="who decided it (default: the caller)")
    p.set_defaults(func=cmd_suspend)
    p = psub.add_parser("resume", help="lift a suspension")
    p.add_argument("project")
    p.add_argument("--by", default=who)
    p.set_defaults(func=cmd_resume)
    p = psub.add_parser("extend", help="record a new end date (an audited change)")
    p.add_argument("project")
    p.add_argument("--end", required=True, help="the new end date, e.g. 2027-06-30")
    p.add_argument("--why", required=True, help="e.g. the amended authorisation's reference")
    p.add_argument("--by", default=who)
    p.set_defaults(func=cmd_extend)
    p = psub.add_parser("close", help="stop, archive and delete a project; write a certificate")
    p.add_argument("project")
    p.add_argument("--why", required=True, help="e.g. 'authorised period ended'")
    p.add_argument("--by", default=who)
    p.set_defaults(func=cmd_close)
    projects = sub.add_parser("projects", help="the register of the projects this hub hosts")
    rsub = projects.add_subparsers(dest="action", required=True)
    p = rsub.add_parser("register", help="public fields of current and past projects")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.set_defaults(func=cmd_register)
