"""A full OIDC login in Chromium, and admin panel actions."""

from __future__ import annotations

import time

from cloisonne.core.projects import project_from_properties
from cloisonne.platform.localhub import LocalHub

from ..integration.oidc_login import login
from ..integration.workspace import spawn, stop
from .conftest import sign_in


def test_researcher_signs_in_through_the_provider(hub: LocalHub, page) -> None:
    page.goto(f"{hub.url}/hub/home")
    page.wait_for_url(f"{hub.idp.issuer}/interaction/**")  # straight to the provider
    assert page.title() == "Sign in"
    sign_in(page, hub, "alice", "wrong")
    assert page.get_by_role("alert").inner_text() == "Wrong username or password."
    sign_in(page, hub, "alice", "a-pw")
    page.wait_for_url(f"{hub.url}/hub/home")
    assert "alice" in page.locator("#login_widget, .navbar").first.inner_text()
    assert page.get_by_role("link", name="Admin").count() == 0


def test_non_member_sees_a_clear_refusal(hub: LocalHub, page) -> None:
    sign_in(page, hub, "eve", "e-pw")
    page.wait_for_url(f"{hub.url}/hub/oauth_callback**")
    assert "not a member or lead of any research project" in page.content()


def test_admin_panel_lists_users_servers_and_project_groups(hub: LocalHub, page) -> None:
    spawn(hub, "dave", "onco")
    try:
        sign_in(page, hub, "admin", "adm-pw")
        page.wait_for_url(f"{hub.url}/hub/home")
        page.get_by_role("link", name="Admin").click()
        page.wait_for_url(f"{hub.url}/hub/admin**")
        for name in ("alice", "bob", "carol", "dave"):
            page.get_by_text(name, exact=True).first.wait_for()
        # dave's running workspace is listed and the admin stops it from the panel
        row = page.locator("[data-testid=user-row-dave-onco]")
        # The panel offers "Access Server", but the admin's role does not open workspaces.
        href = row.get_by_role("link").first.get_attribute("href")
        assert href == "/user/dave/onco/"
        other = page.context.new_page()
        response = other.goto(f"{hub.url}{href}api/contents")
        assert response.status == 403, (response.status, other.url)
        other.close()
        row.locator(".stop-button").click()
        deadline = time.monotonic() + 20
        while "onco" in hub.api("GET", "/users/dave").json()["servers"]:
            assert time.monotonic() < deadline, "the panel's Stop Server did not stop it"
            time.sleep(0.1)
    finally:
        if "onco" in hub.api("GET", "/users/dave").json()["servers"]:
            stop(hub, "dave", "onco")


def eventually(check, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the admin panel's change did not reach the hub"
        time.sleep(0.1)


def open_group(page, hub: LocalHub, name: str) -> None:
    page.goto(f"{hub.url}/hub/admin#/groups")
    page.get_by_role("link", name=name, exact=True).click()
    page.get_by_role("heading", name=f"Editing Group {name}").wait_for()


def test_admin_edits_membership_and_project_properties(hub: LocalHub, page) -> None:
    original = hub.api("GET", "/groups/cardio").json()["properties"]
    sign_in(page, hub, "admin", "adm-pw")
    page.wait_for_url(f"{hub.url}/hub/home")
    try:
        # membership: add dave to cardio
        open_group(page, hub, "cardio")
        page.fill("#username-input", "dave")
        page.click("#validate-user")
        page.get_by_text("dave", exact=True).wait_for()
        page.click("#submit")
        eventually(lambda: "dave" in hub.api("GET", "/groups/cardio").json()["users"])

        # a property edited in the panel (values come back as text) is valid at spawn...
        open_group(page, hub, "cardio")
        page.locator("tr", has=page.locator("#memory")).locator("td:nth-child(2) input").fill(
            "768M"
        )
        page.click("#submit")
        props = lambda: hub.api("GET", "/groups/cardio").json()["properties"]  # noqa: E731
        eventually(lambda: props()["memory"] == "768M")
        edited = props()
        project = project_from_properties("cardio", edited)
        assert project.limits.memory_bytes == 768 * 2**20
        assert project.datasets == ("dcir-sample", "pmsi-sample")

        # ... and an invalid one is refused at spawn, naming the field
        open_group(page, hub, "cardio")
        page.locator("tr", has=page.locator("#memory")).locator("td:nth-child(2) input").fill(
            "lots"
        )
        page.click("#submit")
        eventually(lambda: props()["memory"] == "lots")
        r = hub.api("POST", "/users/alice/servers/cardio")
        assert r.status_code == 500 and "memory" in r.json()["message"]

        # The provider stays the authority: dave's next login puts him back to his claim.
        assert login(hub, "dave", "d-pw").ok
        # (dave's claim: member of onco, lead of cardio; the panel made him a cardio member)
        assert sorted(hub.api("GET", "/users/dave").json()["groups"]) == ["cardio-leads", "onco"]
    finally:
        hub.api("PUT", "/groups/cardio/properties", json=original).raise_for_status()
        hub.api("DELETE", "/groups/cardio/users", json={"users": ["dave"]})
