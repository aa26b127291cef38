from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from cloisonne.core.projects import load_projects
from cloisonne.hub.config import admin_role
from cloisonne.hub.oidc import CloisonneOIDCAuthenticator, map_claim_groups
from cloisonne.platform.idp import ensure_client, project_claims, set_groups, write_accounts
from cloisonne.platform.idp.passwords import check_password, hash_password
from tornado import web


def test_claim_groups_map_to_project_and_leads_groups() -> None:
    claim = ["project-cardio", "project-onco-leads", "cloisonne-admins", "staff", "project-",
             "project-ghost", "project-ghost-leads", "cardio"]  # fmt: skip
    mapped = map_claim_groups(claim, "project-", "-leads", "cloisonne-admins")
    assert mapped == {"cardio", "onco-leads", "cloisonne-admins", "ghost", "ghost-leads"}
    known = map_claim_groups(claim, "project-", "-leads", "cloisonne-admins", ["cardio", "onco"])
    assert known == {"cardio", "onco-leads", "cloisonne-admins"}
    # a site that names them differently
    assert map_claim_groups(["TRE_cardio_leads"], "TRE_", "_leads", "x") == {"cardio_leads"}


def test_hash_format_is_the_one_the_provider_checks() -> None:
    stored = hash_password("s3cret")
    assert stored.startswith("scrypt$") and "s3cret" not in stored
    assert check_password("s3cret", stored) and not check_password("s3cret ", stored)
    assert not check_password("x", "garbage") and not check_password("x", "md5$a$b")


def test_accounts_and_client_files(tmp_path) -> None:
    specs = load_projects("hub_config/projects.yaml")
    claims = project_claims(specs, admins=["admin"])
    assert claims["alice"] == ["project-cardio", "project-onco-leads"]
    assert claims["carol"] == ["project-cardio-leads", "project-onco-leads"]
    assert claims["admin"] == ["cloisonne-admins"]
    write_accounts(tmp_path, {"alice": "pw"}, claims)
    accounts = json.loads((tmp_path / "accounts.json").read_text())
    assert check_password("pw", accounts["users"]["alice"]["password_hash"])
    assert oct((tmp_path / "accounts.json").stat().st_mode & 0o777) == "0o600"
    set_groups(tmp_path, "alice", ["project-onco"])
    assert json.loads((tmp_path / "accounts.json").read_text())["users"]["alice"]["groups"] == [
        "project-onco"
    ]
    first = ensure_client(tmp_path, "http://127.0.0.1:1/hub/oauth_callback")
    again = ensure_client(tmp_path, "http://127.0.0.1:2/hub/oauth_callback")
    assert first.client_secret == again.client_secret  # kept across restarts
    assert json.loads((tmp_path / "clients.json").read_text())[0]["redirect_uris"] == [
        "http://127.0.0.1:2/hub/oauth_callback"
    ]


def test_admin_role_cannot_enter_workspaces() -> None:
    role = admin_role("cloisonne-admins")
    assert role["groups"] == ["cloisonne-admins"]
    assert "admin-ui" in role["scopes"] and "admin:groups" in role["scopes"]
    assert not {"access:servers", "tokens", "shares", "admin:auth_state"} & set(role["scopes"])


def test_user_in_no_project_is_refused_with_a_message() -> None:
    auth = CloisonneOIDCAuthenticator()
    allowed = asyncio.run(auth.check_allowed("bob", {"name": "bob", "groups": ["cardio"]}))
    assert allowed
    with pytest.raises(web.HTTPError) as err:
        asyncio.run(auth.check_allowed("eve", {"name": "eve", "groups": []}))
    assert err.value.status_code == 403 and "not a member or lead" in err.value.log_message


class FakeHandler:
    def __init__(self, user: SimpleNamespace) -> None:
        self.user = user
        self.stopped: list[str] = []

    def find_user(self, name: str) -> SimpleNamespace:
        return self.user

    async def stop_single_user(self, user: SimpleNamespace, name: str) -> None:
        self.stopped.append(name)


def fake_user(groups: list[str], servers: dict[str, bool]) -> SimpleNamespace:
    return SimpleNamespace(
        name="bob",
        groups=[SimpleNamespace(name=g) for g in groups],
        spawners={n: SimpleNamespace(active=a, ready=a) for n, a in servers.items()},
    )


def test_leaving_a_project_stops_its_workspaces_and_is_audited() -> None:
    events: list[tuple[str, dict]] = []
    auth = CloisonneOIDCAuthenticator(audit_hook=lambda ev, **kw: events.append((ev, kw)))
    handler = FakeHandler(fake_user(["cardio", "onco", "onco-leads"],
                                    {"cardio": True, "onco": True, "": False}))  # fmt: skip
    model = {"name": "bob", "groups": ["onco", "cloisonne-admins"]}
    asyncio.run(auth.apply_removed_memberships(handler, model))
    assert handler.stopped == ["cardio"]
    assert ("membership_removed", {"user": "bob", "project": "cardio", "role": "member"}) in events
    assert ("membership_removed", {"user": "bob", "project": "onco", "role": "lead"}) in events
    assert ("membership_added", {"user": "bob", "group": "cloisonne-admins", "role": "admin"}) in (
        events
    )
    assert ("workspace_stopped", {"user": "bob", "project": "cardio", "server": "cardio",
                                  "reason": "membership_removed"}) in events  # fmt: skip


def test_the_default_server_of_a_single_project_is_stopped_too() -> None:
    auth = CloisonneOIDCAuthenticator(audit_hook=lambda ev, **kw: None)
    handler = FakeHandler(fake_user(["onco"], {"": True}))
    asyncio.run(auth.apply_removed_memberships(handler, {"name": "bob", "groups": ["cardio"]}))
    assert handler.stopped == [""]


def test_project_groups_are_written_into_the_hub_database(tmp_path) -> None:
    from cloisonne.hub.groups_sync import sync_project_groups
    from jupyterhub import orm

    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    specs = load_projects("hub_config/projects.yaml")
    created = sync_project_groups(url, specs, extra_groups=["cloisonne-admins"])
    assert set(created) == {"cardio", "cardio-leads", "onco", "onco-leads", "cloisonne-admins"}
    assert sync_project_groups(url, specs) == []  # idempotent
    db = orm.new_session_factory(url)()
    cardio = orm.Group.find(db, "cardio")
    assert cardio.properties["title"] == specs[0].project.title and cardio.users == []
    # an admin's edit is kept until the next start, which re-applies projects.yaml
    cardio.properties = {**cardio.properties, "memory": "768M"}
    db.add(orm.User(name="alice", groups=[cardio]))
    db.commit()
    db.close()
    assert sync_project_groups(url, specs) == ["cardio"]
    db = orm.new_session_factory(url)()
    cardio = orm.Group.find(db, "cardio")
    assert cardio.properties["memory"] == specs[0].project.to_properties()["memory"]
    assert [u.name for u in cardio.users] == ["alice"]  # memberships untouched
    db.close()
