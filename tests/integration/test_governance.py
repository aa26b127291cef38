"""Governance and lifecycle through the real hub, watcher and sandboxes: mandatory fields,
dates, suspension (CLI and admin panel), extension and the register.

Times are printed here; the targets (suspend to last workspace stopped <= 5 s, removal at the
provider to access lost <= the interval + 5 s) are measured against baselines in
bench/lifecycle_bench.py, never asserted in tests.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cloisonne.audit.store import AuditStore
from cloisonne.platform.idp import set_groups
from cloisonne.platform.localhub import LocalHub

from .conftest import PASSWORDS, running_hub
from .oidc_login import login
from .workspace import spawn, stop

HERE = Path(__file__).parent
INTERVAL = 1.0  # the watcher's check interval on this hub
MEMBERSHIP = 3.0  # ... and of memberships at the provider


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    env = {"CLOISONNE_MANDATORY_FIELDS": "purpose,controller,authorisations,end",
           "CLOISONNE_LIFECYCLE_INTERVAL": str(INTERVAL),
           "CLOISONNE_END_WARNING_DAYS": "30", "CLOISONNE_REGISTER_PUBLIC": "on",
           "CLOISONNE_MEMBERSHIP_INTERVAL": str(MEMBERSHIP)}  # fmt: skip
    with running_hub("g", projects_file=HERE / "projects-governance.yaml", extra_env=env) as h:
        yield h


def cli(hub: LocalHub, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cloisonne.platform.cli", *args],
        env=hub.env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def refusal(hub: LocalHub, user: str, server: str) -> str:
    r = hub.api("POST", f"/users/{user}/servers/{server}")
    assert r.status_code >= 400, f"spawn of {user}/{server} was accepted: {r.status_code}"
    return r.json()["message"]


def events(hub: LocalHub, kind: str) -> list:
    store = AuditStore(hub.db_url, create=False)
    try:
        return [e for e in store.iter_events() if e.type == kind]
    finally:
        store.close()


def properties(hub: LocalHub, project: str) -> dict:
    return hub.api("GET", f"/groups/{project}").json()["properties"]


def set_properties(hub: LocalHub, project: str, props: dict) -> None:
    r = hub.api("PUT", f"/groups/{project}/properties", json=props)
    assert r.ok, r.text


def wait_gone(hub: LocalHub, user: str, server: str, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if server not in hub.api("GET", f"/users/{user}").json()["servers"]:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{user}/{server} still running after {timeout} s:\n{hub.log_tail()}")


def test_fields_are_on_the_group_for_the_admin_panel(hub: LocalHub) -> None:
    props = properties(hub, "cardio")
    assert props["controller"] == "CHU Exemple" and props["end"] == "2030-12-31"
    assert props["authorisations"] == [
        {"reference": "DR-2026-042", "authority": "CNIL", "date": "2026-01-15"}
    ]


def test_missing_mandatory_fields_refuse_the_spawn_and_say_which(hub: LocalHub) -> None:
    message = refusal(hub, "dave", "onco")
    assert "lacks purpose, controller, authorisations, end" in message
    assert "onco" not in hub.api("GET", "/users/dave").json()["servers"]


def test_an_ended_project_is_refused_and_its_workspace_stopped(hub: LocalHub) -> None:
    original = properties(hub, "cardio")
    spawn(hub, "alice", "cardio")
    yesterday = (datetime.date.today() - datetime.timedelta(days=1)).isoformat()
    try:
        set_properties(hub, "cardio", {**original, "start": "2025-01-01", "end": yesterday})
        took = wait_gone(hub, "alice", "cardio", INTERVAL + 30)
        print(f"\nend date passed -> workspace stopped: {took:.2f} s (interval {INTERVAL} s)")
        assert f"ended on {yesterday}" in refusal(hub, "alice", "cardio")
        stops = events(hub, "lifecycle.workspace_stopped")
        assert stops and stops[-1].user == "alice" and "ended on" in stops[-1].fields["reason"]
        tomorrow = (datetime.date.today() + datetime.timedelta(days=1)).isoformat()
        set_properties(hub, "cardio", {**original, "start": tomorrow})
        assert f"starts on {tomorrow}" in refusal(hub, "alice", "cardio")
        # an extension is a recorded change: who, the old and new end, why
        set_properties(hub, "cardio", {**original, "end": yesterday})
        done = cli(hub, "project", "extend", "cardio", "--end", "2031-06-30",
                   "--why", "CNIL DR-2026-042 amended", "--by", "carol")  # fmt: skip
        assert done.returncode == 0, done.stderr
        extended = events(hub, "lifecycle.extended")[-1]
        assert (extended.user, extended.fields["old_end"], extended.fields["new_end"]) == (
            "carol", yesterday, "2031-06-30")  # fmt: skip
        assert events(hub, "hub.group_change")[-1].fields["properties"]["end"] == "2031-06-30"
        spawn(hub, "alice", "cardio")
        stop(hub, "alice", "cardio")
    finally:
        set_properties(hub, "cardio", original)
        hub.api("DELETE", "/users/alice/servers/cardio")


def test_leads_and_admins_are_told_before_the_end(hub: LocalHub) -> None:
    original = properties(hub, "cardio")
    soon = (datetime.date.today() + datetime.timedelta(days=10)).isoformat()
    try:
        set_properties(hub, "cardio", {**original, "end": soon})
        deadline = time.monotonic() + INTERVAL + 10
        while not (notices := [e for e in events(hub, "lifecycle.end_near")
                               if e.fields["end"] == soon]):  # fmt: skip
            assert time.monotonic() < deadline, hub.log_tail()
            time.sleep(0.2)
        assert notices[0].fields["days_left"] == 10 and "carol" in notices[0].fields["told"]
    finally:
        set_properties(hub, "cardio", original)


def test_suspend_stops_every_workspace_within_seconds_and_resume_undoes_it(
    hub: LocalHub,
) -> None:
    spawn(hub, "alice", "cardio")
    spawn(hub, "bob", "cardio")
    try:
        start = time.monotonic()
        done = cli(hub, "project", "suspend", "cardio", "--why", "incident 2026-17",
                   "--by", "admin")  # fmt: skip
        took = time.monotonic() - start
        assert done.returncode == 0, done.stderr + hub.log_tail()
        print(f"\nsuspend -> last workspace stopped: {took:.2f} s ({done.stdout.strip()})")
        for user in ("alice", "bob"):
            assert "cardio" not in hub.api("GET", f"/users/{user}").json()["servers"]
        message = refusal(hub, "bob", "cardio")
        assert "suspended (incident 2026-17)" in message
        suspended = events(hub, "lifecycle.suspended")[-1]
        assert (suspended.user, suspended.fields["why"]) == ("admin", "incident 2026-17")
        props = properties(hub, "cardio")
        assert (props["state"], props["state_by"]) == ("suspended", "admin")
        assert cli(hub, "project", "resume", "cardio").returncode == 0
        assert "state" not in properties(hub, "cardio")
        spawn(hub, "bob", "cardio")
    finally:
        for user in ("alice", "bob"):
            hub.api("DELETE", f"/users/{user}/servers/cardio")
        props = {k: v for k, v in properties(hub, "cardio").items() if not k.startswith("state")}
        set_properties(hub, "cardio", props)


def test_suspension_from_the_admin_panel_stops_workspaces(hub: LocalHub) -> None:
    """The admin panel edits group properties through the same REST call."""
    original = properties(hub, "cardio")
    spawn(hub, "alice", "cardio")
    try:
        set_properties(hub, "cardio", {**original, "state": "suspended", "state_why": "test"})
        took = wait_gone(hub, "alice", "cardio", INTERVAL + 30)
        print(f"\nadmin panel suspension -> workspace stopped: {took:.2f} s")
        change = events(hub, "hub.group_change")[-1]
        assert change.fields["properties"]["state"] == "suspended" and change.user
    finally:
        set_properties(hub, "cardio", original)
        hub.api("DELETE", "/users/alice/servers/cardio")


def test_register_lists_public_fields(hub: LocalHub) -> None:
    done = cli(hub, "projects", "register", "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = {row["id"]: row for row in json.loads(done.stdout)}
    assert rows["cardio"]["authorisations"] == "CNIL DR-2026-042 of 2026-01-15"
    assert rows["cardio"]["state"] == "active" and "members" not in rows["cardio"]
    csv_out = cli(hub, "projects", "register", "--format", "csv").stdout
    assert csv_out.splitlines()[0].startswith("id,title,purpose,authorisations")
    assert "CHU Exemple" in csv_out


def test_register_page_is_public_here_and_keeps_closed_projects(hub: LocalHub) -> None:
    original = properties(hub, "onco")
    try:
        set_properties(hub, "onco", {**original, "state": "closed", "state_why": "ended 2026"})
        assert "is closed" in refusal(hub, "dave", "onco")
        page = requests.get(f"{hub.url}/hub/register", timeout=30)  # no credentials
        assert page.status_code == 200 and 'data-project="cardio"' in page.text
        assert "CNIL DR-2026-042 of 2026-01-15" in page.text and "CHU Exemple" in page.text
        rows = requests.get(f"{hub.url}/hub/register?format=json", timeout=30).json()
        assert {r["id"]: r["state"] for r in rows} == {"cardio": "active", "onco": "closed"}
        assert all("members" not in r and "cpu" not in r for r in rows)
    finally:
        set_properties(hub, "onco", original)


def test_register_page_needs_sign_in_by_default(platform: LocalHub) -> None:
    page = requests.get(f"{platform.url}/hub/register", timeout=30, allow_redirects=False)
    assert page.status_code == 302 and "/login" in page.headers["Location"]


def test_member_removed_at_the_provider_loses_access_without_logging_in(hub: LocalHub) -> None:
    assert login(hub, "bob", PASSWORDS["bob"]).ok  # the hub keeps this login's tokens
    spawn(hub, "bob", "cardio")
    r = hub.api("POST", "/users/bob/tokens", json={"note": "notebook client"})
    token = r.json()["token"]
    assert hub.api("GET", "/user", token=token).ok
    accounts = json.loads((hub.state / "idp/accounts.json").read_text())
    before = accounts["users"]["bob"]["groups"]
    try:
        set_groups(hub.state / "idp", "bob", [g for g in before if g != "project-cardio"])
        took = wait_gone(hub, "bob", "cardio", MEMBERSHIP + INTERVAL + 30)
        start = time.monotonic() - took
        while hub.api("GET", "/user", token=token).ok:
            assert time.monotonic() - start < MEMBERSHIP + INTERVAL + 30, "token still accepted"
            time.sleep(0.1)
        lost = time.monotonic() - start
        print(
            f"\nremoved at the provider -> workspace stopped {took:.2f} s, token revoked "
            f"{lost:.2f} s (interval {MEMBERSHIP} s)"
        )
        assert "cardio" not in hub.api("GET", "/users/bob").json()["groups"]
        revoked = events(hub, "lifecycle.membership_revoked")[-1]
        assert revoked.user == "bob" and revoked.fields["groups"] == ["cardio"]
        assert revoked.fields["tokens_revoked"] >= 1
        assert "is not one of bob's projects" in refusal(hub, "bob", "cardio")
    finally:
        set_groups(hub.state / "idp", "bob", before)
        hub.api("POST", "/groups/cardio/users", json={"users": ["bob"]})
        hub.api("DELETE", "/users/bob/servers/cardio")
