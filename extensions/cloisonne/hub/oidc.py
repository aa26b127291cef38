"""OpenID Connect login: the identity provider's groups claim decides projects, leads, admins.

A claim group ``project-<id>`` makes the user a member (researcher) of project ``<id>``,
``project-<id>-leads`` a lead of it, and one of ``admin_groups`` a hub admin. In JupyterHub the
groups are named ``<id>`` and ``<id>-leads`` (what the spawners and the project gate use).

oauthenticator's ``manage_groups`` makes the claim authoritative: JupyterHub replaces the user's
groups with it at every login. Before that happens, this authenticator compares the old
project groups with the new ones, stops the workspaces of projects the user has left and
reports each change to the audit hook.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from traitlets import Any as AnyTrait
from traitlets import List, Unicode, default

from ..core.access_gates import id_token_claims, mfa_missing, training_missing
from ..core.claims import map_claim_groups

AuditHook = Callable[..., Any]


class CloisonneOIDCAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator (OIDC, PKCE) with Cloisonné's groups-claim convention."""

    project_group_prefix = Unicode(
        "project-",
        config=True,
        help="Prefix of the groups-claim entries that name projects: '<prefix><id>' is a "
        "member of project <id>, '<prefix><id><leads_suffix>' a lead.",
    )
    leads_suffix = Unicode(
        "-leads", config=True, help="Suffix of the claim entries (and hub groups) of leads."
    )
    projects = List(
        Unicode(),
        allow_none=True,
        default_value=None,
        config=True,
        help="Project ids the hub knows (from projects.yaml). Claim entries for other "
        "projects are ignored. None: accept every project id.",
    )
    admin_group = Unicode(
        "cloisonne-admins",
        config=True,
        help="Claim group whose members administer the hub. They join the hub group of that "
        "name, which holds the 'cloisonne-admin' role (admin panel, users, servers, groups; "
        "no workspace access), not JupyterHub's all-powerful admin flag.",
    )
    audit_hook = AnyTrait(
        None,
        allow_none=True,
        config=True,
        help="Callable audit(event_type, user=..., project=..., **fields) called for each "
        "membership change at login (the audit service plugs in here). Default: a JSON line "
        "in the hub log.",
    )

    mfa_acr_values = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Login requires the ID token's 'acr' to be one of these (e.g. Keycloak's level of "
        "assurance, or 'urn:cloisonne:acr:mfa' from the embedded provider). Empty: not checked.",
    )
    mfa_amr_values = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Login requires the ID token's 'amr' to hold one of these methods (e.g. otp, mfa, "
        "hwk). Empty: not checked.",
    )
    training_claim = Unicode(
        "",
        config=True,
        help="Userinfo claim holding the expiry date (ISO) of the user's training or "
        "accreditation; login is refused once it has passed. Empty: not checked.",
    )
    training_group = Unicode(
        "",
        config=True,
        help="Provider group whose members hold a current training or accreditation (an "
        "alternative or complement to training_claim). Empty: not checked.",
    )

    @default("manage_groups")
    def _manage_groups(self) -> bool:
        return True

    @default("enable_pkce")
    def _enable_pkce(self) -> bool:
        return True

    @default("auth_state_groups_key")
    def _groups_key(self) -> str:
        return "oauth_user.groups"

    @default("username_claim")
    def _username_claim(self) -> str:
        return "preferred_username"

    @default("scope")
    def _scope(self) -> list[str]:
        return ["openid", "profile", "email", "groups"]

    def audit(self, event_type: str, **fields: Any) -> None:
        if self.audit_hook is not None:
            self.audit_hook(event_type, **fields)
        else:
            self.log.info("audit %s", json.dumps({"event": event_type, **fields}, sort_keys=True))

    async def get_user_groups(self, auth_state: dict) -> set[str]:
        claim = await super().get_user_groups(auth_state)
        return map_claim_groups(
            claim,
            self.project_group_prefix,
            self.leads_suffix,
            self.admin_group,
            None if self.projects is None else list(self.projects),
        )

    async def check_allowed(self, username: str, auth_model: dict | None) -> bool:
        if auth_model is None:  # JupyterHub asks about existing users at start-up
            return True
        self.check_access_gates(username, auth_model)
        if auth_model.get("admin"):
            return True
        if any(g not in self.admin_groups for g in auth_model.get("groups") or []):
            return True
        # A clear page rather than JupyterHub's bare "403: Forbidden".
        raise web.HTTPError(
            403,
            f"{username} signed in, but is not a member or lead of any research project on this "
            "hub. Ask a project lead to add you to their project at the identity provider "
            f"(group '{self.project_group_prefix}<project>'), then sign in again.",
        )

    def check_access_gates(self, username: str, auth_model: dict) -> None:
        """Refuse a login without the site's MFA or training claims, saying which is missing."""
        state = auth_model.get("auth_state") or {}
        userinfo = state.get(self.user_auth_state_key) or {}
        raw_groups = userinfo.get(self.auth_state_groups_key.removeprefix("oauth_user."), [])
        missing = [
            mfa_missing(id_token_claims(state.get("id_token")), self.mfa_acr_values,
                        self.mfa_amr_values),
            training_missing(userinfo, raw_groups, claim=self.training_claim,
                             group=self.training_group,
                             today=datetime.datetime.now(datetime.UTC).date()),
        ]  # fmt: skip
        missing = [m for m in missing if m]
        if missing:
            self.audit("login_refused", user=username, missing=missing)
            raise web.HTTPError(
                403,
                f"{username} signed in, but this hub requires {' and '.join(missing)}. "
                "Sign out of the identity provider and sign in again with it, or ask your "
                "site's administrator.",
            )

    async def run_post_auth_hook(self, handler: Any, auth_model: dict) -> dict:
        auth_model = await super().run_post_auth_hook(handler, auth_model)
        if auth_model and handler is not None:
            await self.apply_removed_memberships(handler, auth_model)
        return auth_model

    async def apply_removed_memberships(self, handler: Any, auth_model: dict) -> None:
        """Stop the workspaces of projects the user no longer belongs to; audit every change.

        Runs after authentication and before JupyterHub replaces the user's groups, so the old
        groups are still in the database."""
        user = handler.find_user(auth_model["name"])
        if user is None:
            return
        old = {g.name for g in user.groups}
        new = set(auth_model.get("groups") or [])
        old_projects = sorted(g for g in old if self._is_project(g) and not self._is_leads(g))
        for group in sorted(new - old):
            self._audit_change("membership_added", user.name, group)
        for group in sorted(old - new):
            self._audit_change("membership_removed", user.name, group)
        removed = {g for g in old - new if self._is_project(g) and not self._is_leads(g)}
        for server_name, spawner in list(user.spawners.items()):
            project = server_name or (old_projects[0] if len(old_projects) == 1 else "")
            if project in removed and (spawner.active or spawner.ready):
                self.log.info("Stopping %s's workspace %r: no longer in project %s",
                              user.name, server_name, project)  # fmt: skip
                await handler.stop_single_user(user, server_name)
                self.audit("workspace_stopped", user=user.name, project=project,
                           server=server_name, reason="membership_removed")  # fmt: skip

    def _is_project(self, group: str) -> bool:
        return group != self.admin_group

    def _is_leads(self, group: str) -> bool:
        return group.endswith(self.leads_suffix)

    def _audit_change(self, event: str, user: str, group: str) -> None:
        if group == self.admin_group:
            self.audit(event, user=user, group=group, role="admin")
        elif self._is_leads(group):
            self.audit(event, user=user, project=group.removesuffix(self.leads_suffix),
                       role="lead")  # fmt: skip
        else:
            self.audit(event, user=user, project=group, role="member")
