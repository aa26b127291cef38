"""Resolving which project a server belongs to, shared by the spawn gate and the spawners.

A server's name is its project id. The gate runs inside JupyterHub's request handling
*before* a named server is created (through ``named_server_limit_per_user``), so a refused
request leaves nothing behind; the spawner checks again at start, because admins can start
servers and edit group properties after the fact.
"""

from __future__ import annotations

import datetime
from typing import Any

from tornado import web

from ..core.lifecycle import ProjectRules, refusal
from ..core.projects import Project, ProjectError, is_project_group, project_from_properties

MAX_SERVER_NAME = 32


class SpawnRefused(web.HTTPError):
    """A spawn refused for a reason the user can act on; str() is the plain message."""

    def __init__(self, status: int, message: str):
        super().__init__(status, log_message=message.replace("%", "%%"), reason=None)
        self.message = message

    def __str__(self) -> str:
        return self.message


def user_projects(user: Any) -> dict[str, Any]:
    """The user's project groups (ORM groups), by id."""
    return {g.name: g for g in user.groups if is_project_group(g.name, g.properties)}


def resolve_project(user: Any, server_name: str) -> tuple[Project, int]:
    """(validated project, stable project index) for ``user``'s server ``server_name``.

    Raises SpawnRefused with a message saying what is wrong and what to do instead.
    """
    groups = user_projects(user)
    if not server_name:
        if len(groups) == 1:
            server_name = next(iter(groups))
        elif not groups:
            raise SpawnRefused(
                403,
                f"{user.name} is not a member of any project, so no workspace can be started. "
                "Ask a project lead or an administrator to add you to a project.",
            )
        else:
            names = ", ".join(sorted(groups))
            raise SpawnRefused(
                400,
                f"{user.name} belongs to several projects ({names}): start the workspace of one "
                "of them by name from the home page, e.g. /hub/spawn/"
                f"{user.name}/{sorted(groups)[0]}",
            )
    check_server_name(server_name)
    group = groups.get(server_name)
    if group is None:
        raise SpawnRefused(
            403,
            f"'{server_name}' is not one of {user.name}'s projects "
            f"({', '.join(sorted(groups)) or 'none'}); a workspace is named after its project.",
        )
    try:
        project = project_from_properties(group.name, group.properties or {})
    except ProjectError as exc:
        raise SpawnRefused(
            500,
            f"The settings of project '{group.name}' are invalid ({exc}); "
            "an administrator must correct the group's properties in the admin panel.",
        ) from None
    return project, group.id


def check_lifecycle(project: Project, rules: ProjectRules) -> None:
    """Refuse a spawn of a project that is suspended, closed, outside its dates or missing a
    field the site declares mandatory (core.lifecycle.refusal says which)."""
    reason = refusal(project, datetime.datetime.now(datetime.UTC).date(), rules.mandatory_fields)
    if reason:
        raise SpawnRefused(403, reason)


def check_server_name(server_name: str) -> None:
    if len(server_name) > MAX_SERVER_NAME:
        raise SpawnRefused(
            400,
            f"Server name is {len(server_name)} characters long; a workspace is named after "
            f"its project id (at most {MAX_SERVER_NAME} characters).",
        )
    if not server_name.replace("-", "").isalnum() or not server_name.isascii():
        shown = server_name.encode("unicode_escape").decode()[:40]
        raise SpawnRefused(
            400,
            f"Server name {shown!r} is not a project id (lowercase letters, digits and '-').",
        )


def named_server_gate(limit: int = 0) -> Any:
    """A ``JupyterHub.named_server_limit_per_user`` callable that refuses non-project names.

    JupyterHub calls it with the request handler before it creates a named server; the
    handler's path arguments are (user name, server name).
    """

    async def gate(handler: web.RequestHandler) -> int:
        args = list(handler.path_args or [])
        if len(args) >= 2 and args[1]:
            from tornado.escape import url_unescape

            user_name, server_name = url_unescape(args[0]), url_unescape(args[1])
            user = handler.find_user(user_name)  # type: ignore[attr-defined]
            if user is not None:
                project, _ = resolve_project(user, server_name)
                check_lifecycle(project, ProjectRules(config=handler.settings.get("config")))
        return limit

    return gate
