"""The hub's side of project lifecycle: the site's rules and the watcher service.

``ProjectRules`` (core.lifecycle) holds the settings; the environment variables below only feed
it. The spawn gate and the spawners read the rules from the hub's config; the lifecycle watcher,
a managed service of its own, gets the same section as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..core.lifecycle import ProjectRules
from .register_page import RegisterHandler

SERVICE = "cloisonne-lifecycle"

SETTINGS = {
    "CLOISONNE_MANDATORY_FIELDS": (
        "",
        "governance fields a project needs before it can start workspaces, comma-separated "
        "(ProjectRules.mandatory_fields)",
    ),
    "CLOISONNE_END_WARNING_DAYS": (
        "14",
        "days before a project's end when its leads and admins are told",
    ),
    "CLOISONNE_REGISTER_PUBLIC": (
        "off",
        "on: the project register at /hub/register is public (ProjectRules.register_public)",
    ),
    "CLOISONNE_LIFECYCLE_INTERVAL": (
        "5",
        "seconds between checks that stop workspaces of suspended, closed or ended projects",
    ),
}


def configure_lifecycle(
    c: Any, env: Mapping[str, str], services: list, roles: list, *, command: list[str],
    admin_group: str, db_url: str,
) -> None:  # fmt: skip
    """Feed ``ProjectRules`` from the environment and add the watcher service and its role;
    ``command`` runs ``cloisonne.service.lifecycle_watch`` as a managed service."""
    rules = c.ProjectRules
    if env.get("CLOISONNE_MANDATORY_FIELDS"):
        names = env["CLOISONNE_MANDATORY_FIELDS"].split(",")
        rules.mandatory_fields = [n.strip() for n in names if n.strip()]
    if env.get("CLOISONNE_END_WARNING_DAYS"):
        rules.end_warning_days = int(env["CLOISONNE_END_WARNING_DAYS"])
    if env.get("CLOISONNE_LIFECYCLE_INTERVAL"):
        rules.check_interval = float(env["CLOISONNE_LIFECYCLE_INTERVAL"])
    if env.get("CLOISONNE_REGISTER_PUBLIC"):
        rules.register_public = env["CLOISONNE_REGISTER_PUBLIC"] == "on"
    ProjectRules(config=c)  # a wrong value stops the hub here, with the trait's message
    handlers = list(c.JupyterHub.extra_handlers) if "extra_handlers" in c.JupyterHub else []
    c.JupyterHub.extra_handlers = [*handlers, (r"/register", RegisterHandler)]
    services.append(
        {
            "name": SERVICE,
            "command": command,
            "environment": {
                "CLOISONNE_PROJECT_RULES": json.dumps(dict(rules)),
                "CLOISONNE_ADMIN_GROUP": admin_group,
                "CLOISONNE_AUDIT_DB": db_url,
            },
        }
    )
    roles.append(
        {
            "name": SERVICE,
            "scopes": [
                "list:users",
                "read:users",
                "list:groups",
                "read:groups",
                "read:servers",
                "delete:servers",
            ],  # fmt: skip
            "services": [SERVICE],
        }
    )
