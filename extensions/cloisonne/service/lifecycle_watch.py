"""The lifecycle watcher: a hub-managed service that keeps running workspaces within the rules.

A spawn is refused by the gate, but a workspace already running when its project is suspended
(admin panel or ``cloisonne project suspend``), closed, reaches its end date or loses a
mandatory field keeps running unless something stops it: every ``ProjectRules.check_interval``
seconds this service reads the project groups and the active servers through the hub's REST API,
stops what ``core.lifecycle.servers_to_stop`` names, and records each stop, and each end-of-
project notice to leads and admins, in the audit log. It holds only the scopes it needs
(read users and groups, stop servers); it cannot start servers or enter workspaces.

Usage (started by the hub): python -m cloisonne.service.lifecycle_watch
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import requests
from traitlets.config import Config

from ..audit.store import AuditStore
from ..core.claims import map_claim_groups
from ..core.governance import ACTIVE
from ..core.lifecycle import (
    ProjectRules,
    RunningServer,
    StopOrder,
    end_notice_due,
    server_project,
    servers_to_stop,
)
from ..core.projects import Project, ProjectError, is_project_group, project_from_properties
from ..data.s3 import S3Error, S3Store, StorePorts

log = logging.getLogger("cloisonne.lifecycle")


class HubClient:
    """The few REST calls the watcher and the `cloisonne project` commands make."""

    def __init__(self, api_url: str, token: str, timeout: float = 30):
        self.api_url, self.timeout = api_url.rstrip("/"), timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        r = self.session.request(method, self.api_url + path, timeout=self.timeout, **kw)
        if r.status_code >= 400 and r.status_code != 404:
            raise RuntimeError(f"hub API {method} {path}: {r.status_code} {r.text[:300]}")
        return r

    def groups(self) -> list[dict[str, Any]]:
        return self.call("GET", "/groups", params={"limit": 10000}).json()

    def active_users(self) -> list[dict[str, Any]]:
        return self.call("GET", "/users", params={"state": "active", "limit": 10000}).json()

    def stop_server(self, user: str, server: str) -> None:
        path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
        self.call("DELETE", path)


def read_projects(groups: list[dict[str, Any]]) -> dict[str, Project]:
    """The valid project groups by id (an invalid one is left to the spawn gate to report)."""
    out = {}
    for group in groups:
        if not is_project_group(group["name"], group.get("properties")):
            continue
        try:
            out[group["name"]] = project_from_properties(group["name"], group["properties"])
        except ProjectError as exc:
            log.warning("skipping %s: %s", group["name"], exc)
    return out


def running_servers(users: list[dict[str, Any]], *, stopping: bool = False) -> list[RunningServer]:
    """Every active server (ready or starting); those being stopped only if ``stopping``."""
    servers = []
    for user in users:
        for name, model in (user.get("servers") or {}).items():
            if stopping or model.get("pending") != "stop":
                servers.append(RunningServer(user["name"], name, tuple(user.get("groups", []))))
    return servers


def stop_all(client: HubClient, orders: list[StopOrder], store: AuditStore | None) -> None:
    for order in orders:
        client.stop_server(order.user, order.server)
        log.info("stopped %s/%s: %s", order.user, order.server, order.reason)
        if store is not None:
            store.append(
                "lifecycle.workspace_stopped",
                user=order.user,
                project=order.project,
                fields={"server": order.server, "reason": order.reason},
            )


def wait_stopped(client: HubClient, project: str, timeout: float = 60) -> float:
    """Seconds until no server of ``project`` is active (stops are asynchronous in the hub)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        users = client.active_users()
        ids = {g["name"] for g in client.groups()}
        running = running_servers(users, stopping=True)
        if not [s for s in running if server_project(s, ids) == project]:
            return time.monotonic() - start
        time.sleep(0.1)
    raise TimeoutError(f"workspaces of project '{project}' still running after {timeout:g} s")


class MembershipCheck:
    """A member removed from a project at the identity provider loses it between logins.

    For each user with a running workspace, the provider's userinfo endpoint is asked for their
    groups with the access token of their last login (read from the hub's encrypted auth
    state); each project or leads group no longer in the claim is taken away: the project's
    workspaces stopped, the user removed from the hub group, every API token of the user
    revoked, and each change audited.
    """

    def __init__(self, client: HubClient, idp: Mapping[str, str], rules: ProjectRules,
                 store: AuditStore | None) -> None:  # fmt: skip
        self.client, self.idp, self.rules, self.store = client, idp, rules, store

    def claimed(self, auth_state: Mapping[str, Any]) -> set[str] | None:
        """The user's hub groups according to the provider now; None if it cannot say."""
        token = auth_state.get("access_token")
        if not token:
            return None
        r = requests.get(self.idp["userinfo"], headers={"Authorization": f"Bearer {token}"},
                         timeout=10)  # fmt: skip
        if r.status_code in (401, 403):
            return set() if self.rules.unverified_membership == "stop" else None
        r.raise_for_status()
        claim = r.json().get(self.idp["claim"]) or []
        return map_claim_groups(claim, self.idp["prefix"], self.idp["leads_suffix"],
                                self.idp["admin_group"])  # fmt: skip

    def check(self) -> list[tuple[str, str]]:
        """Apply every removal; returns the (user, group) pairs taken away."""
        projects = {g["name"] for g in self.client.groups()
                    if is_project_group(g["name"], g.get("properties"))}  # fmt: skip
        managed = projects | {p + "-leads" for p in projects}
        taken = []
        for user in self.client.active_users():
            if not user.get("servers"):
                continue
            model = self.client.call("GET", f"/users/{user['name']}").json()
            now = self.claimed(model.get("auth_state") or {})
            if now is None:
                continue
            removed = sorted(g for g in model.get("groups", []) if g in managed and g not in now)
            if removed:
                self.take_away(model, removed, projects)
                taken += [(user["name"], g) for g in removed]
        return taken

    def take_away(self, user: Mapping[str, Any], removed: list[str], projects: set[str]) -> None:
        name = user["name"]
        left = [g for g in removed if not g.endswith("-leads")]
        orders = []
        for server in running_servers([user]):
            project = server_project(server, projects)  # a one-project user's default server
            if project in left:
                reason = f"{name} was removed from project '{project}' at the identity provider"
                orders.append(StopOrder(name, server.server, project, reason))
        stop_all(self.client, orders, self.store)
        for group in removed:
            self.client.call("DELETE", f"/groups/{group}/users", json={"users": [name]})
        tokens = self.client.call("GET", f"/users/{name}/tokens").json()
        items = tokens.get("api_tokens", []) if isinstance(tokens, dict) else tokens
        for token in items:
            self.client.call("DELETE", f"/users/{name}/tokens/{token['id']}")
        log.info("%s removed at the provider from %s: %d workspace(s) stopped, %d token(s) "
                 "revoked", name, removed, len(orders), len(items))  # fmt: skip
        if self.store is not None:
            self.store.append("lifecycle.membership_revoked", user=name,
                              project=left[0] if len(left) == 1 else "",
                              fields={"groups": removed, "stopped": [o.server for o in orders],
                                      "tokens_revoked": len(items)})  # fmt: skip


class Watcher:
    def __init__(self, client: HubClient, rules: ProjectRules, store: AuditStore | None,
                 membership: MembershipCheck | None = None,
                 s3: S3Store | None = None) -> None:  # fmt: skip
        self.client, self.rules, self.store = client, rules, store
        self.membership, self.s3 = membership, s3
        self.noticed: dict[str, datetime.date] = {}
        self.membership_checked = 0.0

    def check(self, today: datetime.date | None = None) -> list[StopOrder]:
        today = today or datetime.datetime.now(datetime.UTC).date()
        groups = self.client.groups()
        projects = read_projects(groups)
        orders = servers_to_stop(
            projects, running_servers(self.client.active_users()), today,
            self.rules.mandatory_fields,
        )  # fmt: skip
        stop_all(self.client, orders, self.store)
        self.notify(projects, {g["name"]: g.get("users", []) for g in groups}, today)
        if self.s3 is not None:
            self.freeze_credentials(projects)
        return orders

    def freeze_credentials(self, projects: Mapping[str, Project]) -> None:
        """A suspended or closed project's S3 credential is withdrawn from the store, and
        re-applied once the project is active again (the store remembers which are frozen, so
        a change made by `cloisonne project suspend|resume` meanwhile is seen the same way)."""
        assert self.s3 is not None
        for pid, project in projects.items():
            state = project.governance.state
            if not (self.s3.conf / "credentials" / f"{pid}.json").exists():
                continue
            try:
                if state != ACTIVE and not self.s3.is_frozen(pid):
                    self.s3.freeze_project(pid)
                    log.info("S3 credential of %s (%s) withdrawn", pid, state)
                    if self.store is not None:
                        self.store.append("lifecycle.s3_frozen", project=pid,
                                          fields={"state": state})  # fmt: skip
                elif state == ACTIVE and self.s3.is_frozen(pid):
                    self.s3.ensure_project(pid)
                    log.info("S3 credential of %s re-applied", pid)
            except S3Error as exc:
                log.warning("S3 credential of %s: %s", pid, exc)

    def notify(
        self, projects: Mapping[str, Project], members: Mapping[str, list[str]],
        today: datetime.date,
    ) -> None:  # fmt: skip
        """Tell each ending project's leads and the admins, once a day."""
        admins = members.get(os.environ.get("CLOISONNE_ADMIN_GROUP", "cloisonne-admins"), [])
        for pid, project in projects.items():
            left = end_notice_due(project, today, self.rules.end_warning_days)
            if left is None or self.noticed.get(pid) == today:
                continue
            self.noticed[pid] = today
            recipients = sorted({*members.get(project.leads_group, []), *admins})
            log.info("project %s ends in %d day(s); told %s", pid, left, recipients)
            if self.store is not None:
                self.store.append(
                    "lifecycle.end_near",
                    project=pid,
                    fields={"end": project.governance.end.isoformat(),  # type: ignore[union-attr]
                            "days_left": left, "told": recipients},
                )  # fmt: skip

    def run(self) -> None:
        while True:
            try:
                self.check()
                every = self.rules.membership_check_interval
                if (
                    self.membership
                    and every
                    and time.monotonic() - self.membership_checked >= every
                ):
                    self.membership_checked = time.monotonic()
                    self.membership.check()
            except (requests.RequestException, RuntimeError) as exc:
                log.warning("lifecycle check failed (will retry): %s", exc)
            time.sleep(self.rules.check_interval)


def rules_from_env(env: Mapping[str, str] = os.environ) -> ProjectRules:
    """The hub passes its ``ProjectRules`` config section as JSON (hub/lifecycle.py)."""
    section = json.loads(env.get("CLOISONNE_PROJECT_RULES") or "{}")
    return ProjectRules(config=Config({"ProjectRules": section}))


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="[%(levelname)s %(asctime)s %(name)s] %(message)s"
    )
    client = HubClient(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"])
    db = os.environ.get("CLOISONNE_AUDIT_DB")
    store = AuditStore(db) if db else None
    rules = rules_from_env()
    idp = json.loads(os.environ.get("CLOISONNE_IDP") or "{}")
    membership = MembershipCheck(client, idp, rules, store) if idp.get("userinfo") else None
    s3_conf = json.loads(os.environ.get("CLOISONNE_S3_STORE") or "{}")
    s3 = None
    if s3_conf.get("root"):
        s3 = S3Store(s3_conf["root"], host=s3_conf["host"], ports=StorePorts(s3_conf["port"]))
    Watcher(client, rules, store, membership, s3).run()


if __name__ == "__main__":
    main()
