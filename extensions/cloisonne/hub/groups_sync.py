"""Project groups' properties from projects.yaml, written at hub start.

With the identity provider owning membership (oauthenticator's ``manage_groups``), JupyterHub
refuses ``load_groups``. The projects' *settings* still come from projects.yaml, so the hub
configuration writes them into the hub database itself, through JupyterHub's own ORM, before
JupyterHub opens it: group ``<id>`` gets the project's properties, group ``<id>-leads`` exists.
A project's lifecycle state (suspended, closed: ``STATE_KEYS``) is kept from the database.
Memberships are left alone (they belong to the identity provider; admins may edit them in the
admin panel until the user's next login).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jupyterhub import orm

from ..core.governance import STATE_KEYS


def sync_project_groups(
    db_url: str, specs: Iterable[Any], extra_groups: Iterable[str] = ()
) -> list[str]:
    """Create missing project and leads groups (and ``extra_groups``, such as the admin group
    that a role names) and set project properties; returns the groups created or changed."""
    try:
        session = orm.new_session_factory(db_url)()
    except orm.DatabaseSchemaMismatch:
        # A database from an older JupyterHub: leave it alone, JupyterHub itself says to run
        # `jupyterhub upgrade-db`; the properties are written at the next start.
        return []
    changed: list[str] = []
    try:
        wanted: dict[str, dict | None] = dict.fromkeys(extra_groups)
        for spec in specs:
            wanted[spec.project.id] = spec.project.to_properties()
            wanted[spec.project.leads_group] = None
        for name, properties in wanted.items():
            group = orm.Group.find(session, name)
            if group is None:
                group = orm.Group(name=name)
                session.add(group)
                changed.append(name)
            if properties is not None:
                # a suspension or close made at run time survives the file being re-applied
                kept = {k: v for k, v in (group.properties or {}).items() if k in STATE_KEYS}
                properties = {**properties, **kept}
            if properties is not None and group.properties != properties:
                group.properties = properties
                if name not in changed:
                    changed.append(name)
        session.commit()
    finally:
        session.close()
        session.get_bind().dispose()
    return changed
