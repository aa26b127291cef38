"""Login through the embedded OIDC provider, over HTTP as a browser does it.

The provider's groups claim decides projects, leads and admins; leaving a project at the
provider stops that project's workspace at the next login; a researcher's token reaches only
their own servers; admins cannot enter workspaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape

import pytest
import requests
from cloisonne.platform.idp import set_groups
from cloisonne.platform.localhub import LocalHub

from .conftest import PASSWORDS, running_hub
from .oidc_login import login
from .workspace import spawn, stop, user_token

ACCOUNTS = {**PASSWORDS, "admin": "adm-pw"}


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    with running_hub("i", ACCOUNTS, admins=("admin",)) as hub:
        yield hub


def audit_events(hub: LocalHub) -> list[dict]:
    """The authenticator's events as recorded in the audit log (type hub.<event>)."""
    from cloisonne.audit.store import AuditStore

    store = AuditStore(hub.db_url, create=False)
    try:
        return [
            {"event": e.type.removeprefix("hub."), "user": e.user,
             **({"project": e.project} if e.project else {}), **e.fields}
            for e in store.iter_events()
        ]  # fmt: skip
    finally:
        store.close()


def test_right_password_lands_on_the_hub_with_the_claim_groups(hub: LocalHub) -> None:
    result = login(hub, "alice", "a-pw")
    assert result.ok, result.response.text[:500]
    assert result.response.url.endswith("/hub/home")
    model = hub.api("GET", "/users/alice").json()
    assert sorted(model["groups"]) == ["cardio", "onco-leads"] and not model["admin"]
    # the session works for the hub's own pages
    assert result.session.get(f"{hub.url}/hub/home", timeout=10).url.endswith("/hub/home")


def test_wrong_password_stays_at_the_provider(hub: LocalHub) -> None:
    result = login(hub, "dave", "not-dave's")
    assert result.response.status_code == 401
    assert "Wrong username or password" in result.response.text
    assert "/hub/" not in result.response.url
    # no hub session was made
    home = result.session.get(f"{hub.url}/hub/home", timeout=10, allow_redirects=False)
    assert home.status_code == 302 and "/hub/login" in home.headers["location"]
    # an unknown account gets the same answer
    assert login(hub, "mallory", "x").response.status_code == 401


def test_someone_in_no_project_is_refused_with_a_clear_page(hub: LocalHub) -> None:
    result = login(hub, "eve", "e-pw")
    assert result.response.status_code == 403
    assert "eve signed in, but is not a member or lead of any research project" in (
        result.response.text
    )
    assert hub.api("GET", "/users/eve").status_code == 404  # no account was made


def test_a_lead_in_no_project_as_member_may_log_in(hub: LocalHub) -> None:
    result = login(hub, "carol", "c-pw")
    assert result.ok
    assert hub.api("GET", "/users/carol").json()["groups"] == ["cardio-leads"]
    # leading a project is not membership: no workspace of it
    r = hub.api("POST", "/users/carol/servers/cardio", token=user_token(hub, "carol"))
    assert r.status_code == 403 and "not one of carol's projects" in r.json()["message"]


def test_admin_group_makes_a_hub_admin_who_sees_the_admin_panel(hub: LocalHub) -> None:
    admin = login(hub, "admin", "adm-pw")
    assert admin.ok, admin.response.text[:500]
    # not JupyterHub's admin flag (it can enter any server): the group's restricted role
    assert hub.api("GET", "/users/admin").json()["groups"] == ["cloisonne-admins"]
    assert admin.session.get(f"{hub.url}/hub/admin", timeout=10).status_code == 200
    alice = login(hub, "alice", "a-pw")
    assert alice.session.get(f"{hub.url}/hub/admin", timeout=10).status_code == 403


def test_keys_and_sessions_survive_a_provider_restart(hub: LocalHub) -> None:
    first = login(hub, "bob", "b-pw")
    assert first.ok
    jwks = requests.get(f"{hub.idp.issuer}/jwks", timeout=5).json()
    hub.idp.stop()
    hub.idp.start()
    assert requests.get(f"{hub.idp.issuer}/jwks", timeout=5).json() == jwks
    # Keep only the provider's session cookies: it signs bob in again without a password.
    browser = requests.Session()
    for cookie in first.session.cookies:
        if cookie.name.startswith("_session"):
            browser.cookies.set_cookie(cookie)
    assert browser.cookies, "the provider set no session cookie"
    again = browser.get(f"{hub.url}/hub/login?next=/hub/home", timeout=30)
    assert again.url.endswith("/hub/home"), again.url


def test_leaving_a_project_at_the_provider_stops_its_workspace(hub: LocalHub) -> None:
    assert login(hub, "bob", "b-pw").ok
    spawn(hub, "bob", "cardio")
    try:
        set_groups(hub.state / "idp", "bob", ["project-onco"])
        assert login(hub, "bob", "b-pw").ok
        model = hub.api("GET", "/users/bob").json()
        assert model["groups"] == ["onco"]
        assert "cardio" not in model["servers"], model["servers"]
        events = audit_events(hub)
        assert {"event": "membership_removed", "user": "bob", "project": "cardio",
                "role": "member"} in events  # fmt: skip
        assert {"event": "workspace_stopped", "user": "bob", "project": "cardio",
                "server": "cardio", "reason": "membership_removed"} in events  # fmt: skip
        # and the gate now refuses that project's workspace
        r = hub.api("POST", "/users/bob/servers/cardio")
        assert r.status_code == 403 and "not one of bob's projects" in r.json()["message"]
    finally:
        if "cardio" in hub.api("GET", "/users/bob").json()["servers"]:
            stop(hub, "bob", "cardio")
        set_groups(hub.state / "idp", "bob", ["project-cardio", "project-onco"])


def test_a_researchers_token_reaches_only_their_own_servers(hub: LocalHub) -> None:
    assert login(hub, "alice", "a-pw").ok
    ws = spawn(hub, "dave", "onco")
    try:
        alice = user_token(hub, "alice")
        for method, path in [
            ("POST", "/users/dave/servers/onco"),
            ("DELETE", "/users/dave/servers/onco"),
            ("POST", "/users/dave/tokens"),
            ("GET", "/users/dave"),
            ("POST", "/groups/onco/users"),
            ("PUT", "/groups/cardio/properties"),
        ]:
            r = hub.api(method, path, token=alice, json={"users": ["alice"]})
            assert r.status_code in (403, 404), (method, path, r.status_code, r.text)
        r = requests.get(f"{ws.base}api/contents", timeout=10,
                         headers={"Authorization": f"token {alice}"}, allow_redirects=False)  # fmt: skip
        assert r.status_code in (302, 403), r.status_code
        assert ws.get("api/contents").status_code == 200  # dave's own token works
    finally:
        stop(hub, "dave", "onco")


def test_admins_cannot_enter_workspaces(hub: LocalHub) -> None:
    assert login(hub, "admin", "adm-pw").ok
    ws = spawn(hub, "dave", "onco")
    try:
        admin = user_token(hub, "admin")
        assert hub.api("GET", "/users/dave", token=admin).ok  # admins manage users...
        r = requests.get(f"{ws.base}api/contents", timeout=10,
                         headers={"Authorization": f"token {admin}"}, allow_redirects=False)  # fmt: skip
        assert r.status_code in (302, 403), r.status_code  # ... but not their workspaces
        # nor by the side doors of JupyterHub's default admin role
        assert hub.api("POST", "/users/dave/tokens", token=admin, json={}).status_code == 403
        share = hub.api("POST", "/shares/dave/onco", token=admin, json={"user": "admin"})
        assert share.status_code in (403, 404), share.text
    finally:
        stop(hub, "dave", "onco")


def test_edited_group_properties_are_validated_at_spawn(hub: LocalHub) -> None:
    assert login(hub, "admin", "adm-pw").ok
    admin = user_token(hub, "admin")
    props = hub.api("GET", "/groups/onco").json()["properties"]
    try:
        bad = {**props, "memory": "lots"}
        assert hub.api("PUT", "/groups/onco/properties", token=admin, json=bad).ok
        r = hub.api("POST", "/users/dave/servers/onco")
        assert (
            r.status_code == 500
            and "settings of project 'onco' are invalid" in (r.json()["message"])
        )
        assert "memory" in r.json()["message"]
    finally:
        assert hub.api("PUT", "/groups/onco/properties", token=admin, json=props).ok


def test_logout_ends_the_provider_session_too(hub: LocalHub) -> None:
    session = login(hub, "alice", "a-pw").session
    confirm = session.get(f"{hub.url}/hub/logout", timeout=30)
    assert confirm.url.startswith(f"{hub.idp.issuer}/session/end"), confirm.url
    assert "fonts.googleapis" not in confirm.text  # self-contained pages
    action = re.search(r'<form[^>]*action="([^"]+)"', confirm.text).group(1)
    xsrf = re.search(r'name="xsrf" value="([^"]+)"', confirm.text).group(1)
    done = session.post(unescape(action) if action.startswith("http") else hub.idp.issuer
                        + unescape(action), data={"xsrf": xsrf, "logout": "yes"}, timeout=30)  # fmt: skip
    assert "You are signed out" in done.text
    again = session.get(f"{hub.url}/hub/login?next=/hub/home", timeout=30)
    assert "/interaction/" in again.url and 'name="password"' in again.text
