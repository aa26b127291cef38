"""The identity provider's groups claim, mapped to the hub's project groups.

Pure, so that the hub's authenticator (at login) and the lifecycle watcher (between logins, to
notice a member removed at the provider) read a claim the same way.
"""

from __future__ import annotations


def map_claim_groups(
    claim: set[str] | list[str],
    prefix: str,
    leads_suffix: str,
    admin_group: str,
    projects: list[str] | None = None,
) -> set[str]:
    """JupyterHub group names for a groups claim (pure; unit-tested).

    ``project-cardio`` -> ``cardio``, ``project-cardio-leads`` -> ``cardio-leads``; the admin
    group is kept as it is; anything else is dropped (a site's IdP sends many groups that
    mean nothing to the hub). With ``projects``, only those project ids count.
    """
    out: set[str] = set()
    for name in claim:
        if name == admin_group:
            out.add(name)
            continue
        if not name.startswith(prefix):
            continue
        hub_name = name[len(prefix) :]
        project_id = hub_name.removesuffix(leads_suffix)
        if not project_id or (projects is not None and project_id not in projects):
            continue
        out.add(hub_name)
    return out
