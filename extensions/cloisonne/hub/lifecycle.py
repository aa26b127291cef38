"""The hub's side of project lifecycle: the site's rules and the watcher service.

``ProjectRules`` (core.lifecycle) holds the settings; the environment variables below only feed
it. The spawn gate and the spawners read the rules from the hub's config; the lifecycle watcher,
a managed service of its own, gets the same section as JSON.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
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
    "CLOISONNE_MEMBERSHIP_INTERVAL": (
        "300",
        "seconds within which a member removed at the identity provider loses access (0: off)",
    ),
    "CLOISONNE_OIDC_ACR": ("", "acr values a login must have, comma-separated (MFA gate)"),
    "CLOISONNE_OIDC_AMR": ("", "amr methods a login must include one of, e.g. otp,mfa,hwk"),
    "CLOISONNE_TRAINING_CLAIM": ("", "userinfo claim with the training/accreditation expiry"),
    "CLOISONNE_TRAINING_GROUP": ("", "provider group of users with current training"),
    "CLOISONNE_LIFECYCLE_INTERVAL": (
        "5",
        "seconds between checks that stop workspaces of suspended, closed or ended projects",
    ),
}


def configure_lifecycle(
    c: Any, env: Mapping[str, str], services: list, roles: list, *, command: list[str],
    admin_group: str, db_url: str, state: Path, userinfo_url: str = "",
    groups_claim: str = "groups",
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
    if env.get("CLOISONNE_MEMBERSHIP_INTERVAL"):
        rules.membership_check_interval = float(env["CLOISONNE_MEMBERSHIP_INTERVAL"])
    if env.get("CLOISONNE_REGISTER_PUBLIC"):
        rules.register_public = env["CLOISONNE_REGISTER_PUBLIC"] == "on"
    auth = c.CloisonneOIDCAuthenticator
    for name, trait in (("CLOISONNE_OIDC_ACR", "mfa_acr_values"),
                        ("CLOISONNE_OIDC_AMR", "mfa_amr_values")):  # fmt: skip
        if env.get(name):
            auth[trait] = [v.strip() for v in env[name].split(",") if v.strip()]
    if env.get("CLOISONNE_TRAINING_CLAIM"):
        auth.training_claim = env["CLOISONNE_TRAINING_CLAIM"]
    if env.get("CLOISONNE_TRAINING_GROUP"):
        auth.training_group = env["CLOISONNE_TRAINING_GROUP"]
    ProjectRules(config=c)  # a wrong value stops the hub here, with the trait's message
    handlers = list(c.JupyterHub.extra_handlers) if "extra_handlers" in c.JupyterHub else []
    c.JupyterHub.extra_handlers = [*handlers, (r"/register", RegisterHandler)]
    idp = membership_check(c, state, admin_group, userinfo_url, groups_claim)
    services.append(
        {
            "name": SERVICE,
            "command": command,
            "environment": {
                "CLOISONNE_PROJECT_RULES": json.dumps(dict(rules)),
                "CLOISONNE_ADMIN_GROUP": admin_group,
                "CLOISONNE_AUDIT_DB": db_url,
                "CLOISONNE_IDP": json.dumps(idp),
                "CLOISONNE_S3_STORE": json.dumps(s3_store(c)),
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
                # the membership check: read the login's tokens, leave groups, revoke tokens
                "admin:auth_state",
                "groups",
                "tokens",
            ],  # fmt: skip
            "services": [SERVICE],
        }
    )


def membership_check(
    c: Any, state: Path, admin_group: str, userinfo_url: str, groups_claim: str
) -> dict[str, str]:
    """What the watcher needs to ask the provider (``userinfo_url``) for a user's groups
    between logins; the hub keeps each login's tokens (encrypted auth state) so that it can.
    Off ({}) without a userinfo URL."""
    if not userinfo_url:
        return {}
    auth = c.CloisonneOIDCAuthenticator
    c.Authenticator.enable_auth_state = True
    if not os.environ.get("JUPYTERHUB_CRYPT_KEY"):
        key_file = state / "auth_state_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
            os.chmod(key_file, 0o600)
        # read by JupyterHub's CryptKeeper when it first encrypts, after the configuration
        os.environ["JUPYTERHUB_CRYPT_KEY"] = key_file.read_text().strip()
    return {
        "userinfo": userinfo_url,
        "claim": groups_claim,
        "prefix": auth.project_group_prefix if "project_group_prefix" in auth else "project-",
        "leads_suffix": auth.leads_suffix if "leads_suffix" in auth else "-leads",
        "admin_group": admin_group,
    }


def s3_store(c: Any) -> dict[str, Any]:
    """Where the project S3 store is (as configured for the spawner), so that the watcher can
    withdraw a suspended project's credential; {} when there is none."""
    data = c.WorkspaceData
    if "s3_root" not in data or not data.s3_root:
        return {}
    return {"root": data.s3_root, "host": data.s3_host, "port": data.s3_port}
