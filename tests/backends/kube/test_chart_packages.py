"""The package proxy in the chart: its settings load as the proxy loads them, workspaces alone
reach it on its one port, and a site without PostgreSQL is told why it cannot have it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from cloisonne.packages.settings import ProxySettings
from traitlets.config import Config

from .conftest import render


def named(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    return doc


def test_settings_load_as_the_proxy_loads_them(manifests: list) -> None:
    data = json.loads(named(manifests, "ConfigMap", "cloisonne-packages")["data"]["settings.json"])
    settings = ProxySettings(config=Config(data))  # traitlets validates mode, allow-list, ...
    assert (settings.mode, settings.port, settings.allow) == (
        "connected", 18340, ["six", "tabulate", "python-dateutil>=2.9"])  # fmt: skip
    assert settings.db_url.startswith("postgresql+psycopg://jupyterhub:${HUB_DB_PASSWORD}@")
    pod = named(manifests, "Deployment", "cloisonne-packages")["spec"]["template"]["spec"]
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert str(settings.key_file.parent) in mounts and settings.state_dir in mounts


def test_only_workspaces_reach_it_on_its_port(manifests: list) -> None:
    policy = named(manifests, "NetworkPolicy", "cloisonne-packages")["spec"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    (peer,) = ingress["from"]
    assert peer["podSelector"]["matchExpressions"][0]["key"] == "cloisonne.io/project"
    # egress: DNS and the two rules the site opened, nothing else
    assert len(policy["egress"]) == 3


def test_the_hub_and_the_proxy_share_one_key(manifests: list) -> None:
    hub = named(manifests, "Deployment", "hub")["spec"]["template"]["spec"]["containers"][0]
    (env,) = [e for e in hub["env"] if e["name"] == "CLOISONNE_PACKAGES_KEY"]
    assert env["valueFrom"]["secretKeyRef"] == {"name": "hub", "key": "packages-key"}
    proxy = named(manifests, "Deployment", "cloisonne-packages")["spec"]["template"]["spec"]
    (key,) = [v for v in proxy["volumes"] if v["name"] == "key"]
    assert key["secret"]["secretName"] == "hub"


def test_needs_postgres(demo_values: dict) -> None:
    values = copy.deepcopy(demo_values)
    values["hub"]["db"] = {"type": "sqlite"}
    with pytest.raises(Exception, match="packages.enabled needs hub.db.type postgres"):
        render(values)
    values["packages"]["enabled"] = False
    assert not [m for m in render(values) if "packages" in m["metadata"]["name"]]
