"""The lifecycle rules: when a project's workspaces may run, which must stop, who to warn.

Pure functions of (project, today, the site's rules), shared by the spawn gate (refuse), the
lifecycle watcher (stop what runs, warn before the end) and the register. ``ProjectRules`` holds
the site's settings as traits; environment variables and chart values only feed it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from traitlets import Bool, Enum, Float, Int, List, TraitError, Unicode, validate
from traitlets.config import Configurable

from .governance import CLOSED, SUSPENDED, check_mandatory_names
from .projects import Project


class ProjectRules(Configurable):
    """What a site requires of its projects before their workspaces may run."""

    mandatory_fields = List(
        Unicode(),
        default_value=[],
        help="""Governance fields every project must have before its workspaces can start:
        any of purpose, authorisations, legal_basis, controller, investigator, start, end,
        outputs, datasets (datasets or an extract). A project missing one is refused at spawn
        with a message naming what is missing.""",
    ).tag(config=True)

    end_warning_days = Int(
        14,
        help="""Days before a project's end date at which its leads and the admins are told
        (an audit event naming them, once a day, until the end or an extension).""",
    ).tag(config=True)

    check_interval = Float(
        5.0,
        help="""Seconds between the lifecycle watcher's checks: workspaces of a project that is
        suspended, closed, ended or not yet started are stopped within this time.""",
    ).tag(config=True)

    membership_check_interval = Float(
        300.0,
        help="""Seconds between checks, for every user with a running workspace, of their
        groups at the identity provider (its userinfo endpoint, with the access token of their
        login). A member removed from a project there loses it within this time, without
        logging in again: the project's workspaces stopped, the hub group left, every API
        token revoked. 0 turns the check off (removal then takes effect at the next login).""",
    ).tag(config=True)

    unverified_membership = Enum(
        ["keep", "stop"],
        "keep",
        help="""What to do when the provider no longer accepts a user's access token, so that
        their groups cannot be checked: 'keep' their workspaces until the next login, or
        'stop' them as if every project had been removed (the strict choice).""",
    ).tag(config=True)

    register_public = Bool(
        False,
        help="""Whether the project register (/hub/register: title, purpose, authorisation,
        controller, dates, datasets and state of current and past projects) is public; by
        default only signed-in users see it.""",
    ).tag(config=True)

    @validate("mandatory_fields")
    def _valid_fields(self, proposal: dict) -> list[str]:
        try:
            return check_mandatory_names(proposal["value"])
        except ValueError as exc:
            raise TraitError(f"ProjectRules.mandatory_fields: {exc}") from None


def missing_fields(project: Project, mandatory: Iterable[str]) -> list[str]:
    """The mandatory fields ``project`` lacks, in the order the site declared them."""
    gov = project.governance
    have = {
        "purpose": bool(gov.purpose),
        "authorisations": bool(gov.authorisations),
        "legal_basis": bool(gov.legal_basis),
        "controller": bool(gov.controller),
        "investigator": bool(gov.investigator),
        "start": gov.start is not None,
        "end": gov.end is not None,
        "outputs": bool(gov.outputs),
        "datasets": bool(project.datasets) or project.extract is not None,
    }
    return [name for name in mandatory if not have[name]]


def refusal(project: Project, today: datetime.date, mandatory: Iterable[str] = ()) -> str:
    """Why ``project``'s workspaces may not run today, as the message a user sees; '' if they
    may."""
    gov = project.governance
    pid = project.id
    if gov.state == CLOSED:
        return f"Project '{pid}' is closed: its workspaces can no longer be started."
    if gov.state == SUSPENDED:
        why = f" ({gov.state_why})" if gov.state_why else ""
        return (
            f"Project '{pid}' is suspended{why}: its workspaces cannot be started until an "
            "administrator resumes it."
        )
    missing = missing_fields(project, mandatory)
    if missing:
        return (
            f"Project '{pid}' cannot start workspaces: its governance record lacks "
            f"{', '.join(missing)}. A project lead or an administrator must fill in "
            f"{'this field' if len(missing) == 1 else 'these fields'} in the project's "
            "properties."
        )
    if gov.start and today < gov.start:
        return (
            f"Project '{pid}' starts on {gov.start.isoformat()}: its workspaces cannot be "
            "started before then."
        )
    if gov.end and today > gov.end:
        return (
            f"Project '{pid}' ended on {gov.end.isoformat()}: its workspaces can no longer be "
            "started. Ask an administrator to record an extension if the authorisation was "
            "extended."
        )
    return ""


@dataclass(frozen=True)
class RunningServer:
    user: str
    server: str  # '' for a default server
    groups: tuple[str, ...]  # the user's groups


@dataclass(frozen=True)
class StopOrder:
    user: str
    server: str
    project: str
    reason: str


def server_project(server: RunningServer, project_ids: Iterable[str]) -> str:
    """The project a running server belongs to: its name, or a one-project user's project."""
    ids = set(project_ids)
    if server.server:
        return server.server if server.server in ids else ""
    mine = [g for g in server.groups if g in ids]
    return mine[0] if len(mine) == 1 else ""


def servers_to_stop(
    projects: Mapping[str, Project],
    servers: Iterable[RunningServer],
    today: datetime.date,
    mandatory: Iterable[str] = (),
) -> list[StopOrder]:
    """Running servers whose project may not run today, or whose user left the project."""
    mandatory = tuple(mandatory)
    reasons = {pid: refusal(p, today, mandatory) for pid, p in projects.items()}
    orders = []
    for server in servers:
        pid = server_project(server, projects)
        if not pid:
            continue
        if pid not in server.groups:
            reason = f"{server.user} is no longer a member of project '{pid}'."
        else:
            reason = reasons[pid]
        if reason:
            orders.append(StopOrder(server.user, server.server, pid, reason))
    return orders


def end_notice_due(project: Project, today: datetime.date, warning_days: int) -> int | None:
    """Days left before ``project``'s end when its leads and admins must be told, else None."""
    end = project.governance.end
    if end is None or warning_days <= 0 or project.governance.state == CLOSED:
        return None
    left = (end - today).days
    return left if 0 <= left <= warning_days else None


REGISTER_FIELDS = ("id", "title", "purpose", "authorisations", "legal_basis", "controller",
                   "investigator", "start", "end", "datasets", "outputs", "state")  # fmt: skip


def register_entry(project: Project, today: datetime.date) -> dict[str, Any]:
    """The public fields of a project for the register (no members, no settings)."""
    gov = project.governance
    if gov.state != "active":
        state = gov.state
    elif gov.start and today < gov.start:
        state = "not started"
    elif gov.end and today > gov.end:
        state = "ended"
    else:
        state = "active"
    return {
        "id": project.id,
        "title": project.title,
        "purpose": gov.purpose,
        "authorisations": "; ".join(str(a) for a in gov.authorisations),
        "legal_basis": gov.legal_basis,
        "controller": gov.controller,
        "investigator": gov.investigator,
        "start": gov.start.isoformat() if gov.start else "",
        "end": gov.end.isoformat() if gov.end else "",
        "datasets": ", ".join(
            [*project.datasets, *([project.extract.source] if project.extract else [])]
        ),
        "outputs": "; ".join(gov.outputs),
        "state": state,
    }
