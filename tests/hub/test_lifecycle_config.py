"""The hub side of lifecycle: the site's rules from the environment, the watcher's role, and a
suspension that survives projects.yaml being re-applied at the next start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cloisonne.core.projects import parse_projects
from cloisonne.hub.groups_sync import sync_project_groups
from cloisonne.hub.lifecycle import SERVICE, configure_lifecycle
from cloisonne.service.lifecycle_watch import rules_from_env
from jupyterhub import orm
from traitlets import TraitError
from traitlets.config import Config


def test_settings_reach_the_gate_and_the_watcher() -> None:
    c, services, roles = Config(), [], []
    env = {"CLOISONNE_MANDATORY_FIELDS": "purpose, end", "CLOISONNE_LIFECYCLE_INTERVAL": "2"}
    configure_lifecycle(c, env, services, roles, command=["watch"], admin_group="adm",
                        db_url="sqlite://", state=Path("/nonexistent"))  # fmt: skip
    assert c.ProjectRules.mandatory_fields == ["purpose", "end"]
    (service,) = services
    rules = rules_from_env(service["environment"])
    assert rules.mandatory_fields == ["purpose", "end"] and rules.check_interval == 2.0
    (role,) = roles
    assert role["services"] == [SERVICE] and "delete:servers" in role["scopes"]
    assert not {"admin:servers", "admin:users", "servers", "access:servers"} & set(role["scopes"])


def test_an_unknown_mandatory_field_stops_the_hub_with_its_name() -> None:
    with pytest.raises(TraitError, match="colour"):
        configure_lifecycle(Config(), {"CLOISONNE_MANDATORY_FIELDS": "colour"}, [], [],
                            command=[], admin_group="a", db_url="", state=Path("."))  # fmt: skip


def test_a_suspension_survives_the_projects_file_being_reapplied(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    specs = parse_projects({"projects": [{"id": "cardio", "purpose": "p"}]})
    sync_project_groups(db, specs)
    session = orm.new_session_factory(db)()
    group = orm.Group.find(session, "cardio")
    group.properties = {**group.properties, "state": "suspended", "state_why": "incident",
                        "purpose": "edited in the admin panel"}  # fmt: skip
    session.commit()
    session.close()
    sync_project_groups(db, specs)
    session = orm.new_session_factory(db)()
    props = orm.Group.find(session, "cardio").properties
    session.close()
    assert (props["state"], props["state_why"], props["purpose"]) == ("suspended", "incident", "p")
    assert json.dumps(props)


def test_membership_check_needs_only_the_endpoints_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the check sets the hub's key from its state folder: restored to what it was afterwards
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "")
    monkeypatch.delenv("JUPYTERHUB_CRYPT_KEY")
    # whatever else is configured before or after (the hub's OIDC settings came after it once,
    # and the check was silently off)
    services: list = []
    configure_lifecycle(Config(), {}, services, [], command=["watch"], admin_group="adm",
                        db_url="sqlite://", state=tmp_path,
                        userinfo_url="https://idp.example/me", groups_claim="roles")  # fmt: skip
    idp = json.loads(services[0]["environment"]["CLOISONNE_IDP"])
    assert (idp["userinfo"], idp["claim"], idp["admin_group"]) == (
        "https://idp.example/me",
        "roles",
        "adm",
    )
    services = []
    configure_lifecycle(Config(), {}, services, [], command=["watch"], admin_group="adm",
                        db_url="sqlite://", state=tmp_path)  # fmt: skip
    assert json.loads(services[0]["environment"]["CLOISONNE_IDP"]) == {}
