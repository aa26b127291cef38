"""The chart's values.schema.json and the Site traits cannot drift: every setting both backends
share is filled from a chart value the schema declares, described with the trait's help."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cloisonne.hub.kube import CHART_ONLY, CHART_SETTINGS, site_from_yaml
from cloisonne.hub.site import Site, SiteError, described

from .conftest import CHART


def schema_node(key: str) -> dict[str, Any]:
    node = json.loads((CHART / "values.schema.json").read_text())
    for part in key.split("."):
        node = node["properties"][part]
    return node


def test_every_shared_setting_comes_from_a_declared_chart_value() -> None:
    shared = {name for name, _, backend in described() if backend == "both"}
    assert set(CHART_SETTINGS.values()) == shared
    for key, name in CHART_SETTINGS.items():
        help_text = " ".join(Site.class_traits()[name].help.split())
        assert help_text in schema_node(key)["description"], key


def test_the_oidc_section_has_no_value_the_adapter_ignores() -> None:
    declared = {f"auth.oidc.{k}" for k in schema_node("auth.oidc")["properties"]}
    assert declared == {k for k in CHART_SETTINGS if k.startswith("auth.")} | set(CHART_ONLY)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"oidc": {"issuer": "https://i"}}, "clientId is empty"),
        ({"oidc": {"clientId": "c"}}, "set issuer"),
        ({"oidc": {"clientId": "c", "issuer": "https://i", "groupsKey": "groups"}}, "groupsKey"),
        ({"hub": {"admin_groups": ["a", "b"]}, "oidc": {"clientId": "c", "issuer": "https://i"}},
         "one admin group"),
    ],
)  # fmt: skip
def test_bad_chart_settings_are_refused_naming_the_value(data: dict, expected: str) -> None:
    with pytest.raises(SiteError, match=expected):
        site_from_yaml(data, {})
