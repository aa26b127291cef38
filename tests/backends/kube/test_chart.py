"""The Helm chart: lints clean, every manifest validates strictly, and the security
properties hold (workspace egress, default-deny, RBAC, privileges, admin access)."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

import helm_python
import pytest
from cloisonne.hub.common import ADMIN_ROLE
from jupyterhub.scopes import expand_scopes

from .conftest import CHART, NAMESPACE, render, validate_strict

PROJECTS = ("cardio", "onco", "rare-disease")
FORBIDDEN_ADMIN_SCOPES = {"admin:users", "admin:auth_state", "admin:servers", "admin:server_state"}
MINIMAL = {
    "hub": {"cookieSecret": "a" * 64},
    "proxy": {"secretToken": "b" * 64},
    "projects": [
        {
            "id": "p1",
            "quota": {"cpu": "2", "memory": "4Gi", "pods": 2},
            "s3": {"host": "s3.example.org", "port": 443, "cidrs": ["198.51.100.7/32"]},
        }
    ],
}


def of_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def strip(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "_template"}


def pod_specs(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["spec"]["template"]["spec"] for m in manifests if m["kind"] == "Deployment"]


@pytest.mark.parametrize("values", ["demo", "minimal"])
def test_lints_clean(demo_values: dict, values: str) -> None:
    report = helm_python.lint(
        CHART, demo_values if values == "demo" else MINIMAL, strict=True, namespace=NAMESPACE
    )
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_every_manifest_validates_strictly(manifests: list[dict[str, Any]]) -> None:
    assert len(manifests) > 30
    for doc in manifests:
        validate_strict(strip(doc))


def test_minimal_values_render_and_validate() -> None:
    docs = render(MINIMAL)
    for doc in docs:
        validate_strict(strip(doc))
    assert {d["metadata"]["name"] for d in of_kind(docs, "PersistentVolumeClaim")} >= {"hub-db"}


def test_schema_refuses_unknown_keys_and_open_egress() -> None:
    typo = copy.deepcopy(MINIMAL)
    typo["hub"]["cookieSecrets"] = "x"
    with pytest.raises(helm_python.HelmValuesError):
        render(typo)
    open_egress = copy.deepcopy(MINIMAL)
    open_egress["projects"][0]["s3"]["cidrs"] = ["0.0.0.0/0"]
    with pytest.raises(helm_python.HelmValuesError):
        render(open_egress)
    bad_url = copy.deepcopy(MINIMAL)
    bad_url["projects"][0]["s3"]["endpointUrl"] = "s3.example.org"  # no scheme
    with pytest.raises(helm_python.HelmValuesError):
        render(bad_url)
    missing_secret = copy.deepcopy(MINIMAL)
    missing_secret["proxy"]["secretToken"] = ""
    with pytest.raises(helm_python.HelmValuesError):
        render(missing_secret)


def project_policies(manifests: list[dict[str, Any]], project: str) -> list[dict[str, Any]]:
    return [
        p
        for p in of_kind(manifests, "NetworkPolicy")
        if p["metadata"]["namespace"] == f"cloisonne-{project}"
    ]


@pytest.mark.parametrize("project", PROJECTS)
def test_every_project_namespace_is_default_deny(manifests: list, project: str) -> None:
    (ns,) = [n for n in of_kind(manifests, "Namespace") if n["metadata"]["name"].endswith(project)]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    deny = [
        p for p in project_policies(manifests, project) if p["metadata"]["name"] == "default-deny"
    ]
    assert len(deny) == 1
    spec = deny[0]["spec"]
    assert spec["podSelector"] == {}
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in spec and "egress" not in spec


def is_open_cidr(cidr: str) -> bool:
    return ipaddress.ip_network(cidr, strict=False).prefixlen == 0


@pytest.mark.parametrize("project", PROJECTS)
def test_no_workspace_egress_to_anywhere(manifests: list, project: str) -> None:
    for policy in project_policies(manifests, project):
        for rule in policy["spec"].get("egress", []):
            # A rule without peers allows every destination.
            assert rule.get("to"), (policy["metadata"]["name"], rule)
            for peer in rule["to"]:
                if "ipBlock" in peer:
                    assert not is_open_cidr(peer["ipBlock"]["cidr"])
                # An empty namespaceSelector means every namespace.
                if "namespaceSelector" in peer:
                    assert peer["namespaceSelector"], rule
            # Anything outside the namespace is reached on named ports only.
            if any("ipBlock" in peer or "namespaceSelector" in peer for peer in rule["to"]):
                assert rule.get("ports"), rule
        for rule in policy["spec"].get("ingress", []):
            assert rule.get("from"), (policy["metadata"]["name"], rule)


def peer_components(rule: dict[str, Any]) -> set[str]:
    return {
        peer.get("podSelector", {}).get("matchLabels", {}).get("cloisonne.io/component", "")
        for peer in rule.get("from", rule.get("to", []))
    }


@pytest.mark.parametrize("project", PROJECTS)
def test_workspace_ingress_only_from_proxy_hub_and_project(manifests: list, project: str) -> None:
    (policy,) = [
        p for p in project_policies(manifests, project) if p["metadata"]["name"] == "workspace"
    ]
    ingress = policy["spec"]["ingress"]
    assert peer_components(ingress[0]) == {"proxy", "hub"}
    assert ingress[0]["ports"] == [{"port": 8888, "protocol": "TCP"}]
    same_project = [{"podSelector": {"matchLabels": {"cloisonne.io/project": project}}}]
    assert ingress[1] == {"from": same_project}
    assert len(ingress) == 2
    # The proxy and hub peers are in the release namespace only.
    for peer in ingress[0]["from"]:
        assert peer["namespaceSelector"] == {
            "matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}
        }


def test_no_privileged_container(manifests: list) -> None:
    for spec in pod_specs(manifests):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(key)
        assert not any("hostPath" in v for v in spec.get("volumes", []))
        for container in spec["containers"] + spec.get("initContainers", []):
            ctx = container["securityContext"]
            assert ctx["privileged"] is False
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["capabilities"] == {"drop": ["ALL"]}


def test_only_the_hub_gets_a_service_account_token(manifests: list) -> None:
    tokens = {
        m["metadata"]["name"]: m["spec"]["template"]["spec"]["automountServiceAccountToken"]
        for m in of_kind(manifests, "Deployment")
    }
    assert tokens == {"hub": True, "proxy": False, "cloisonne-service": False,
                      "cloisonne-packages": False}  # fmt: skip


def test_hub_rbac_limited_to_project_namespaces(manifests: list) -> None:
    assert not of_kind(manifests, "ClusterRole")
    assert not of_kind(manifests, "ClusterRoleBinding")
    hub_bindings = [
        b
        for b in of_kind(manifests, "RoleBinding")
        if any(s["name"] == "hub" and s["namespace"] == NAMESPACE for s in b["subjects"])
    ]
    assert sorted(b["metadata"]["namespace"] for b in hub_bindings) == sorted(
        f"cloisonne-{p}" for p in PROJECTS
    )
    roles = {
        (r["metadata"]["namespace"], r["metadata"]["name"]): r for r in of_kind(manifests, "Role")
    }
    for binding in hub_bindings:
        assert binding["roleRef"]["kind"] == "Role"
        role = roles[binding["metadata"]["namespace"], binding["roleRef"]["name"]]
        for rule in role["rules"]:
            assert rule["apiGroups"] == [""]
            assert set(rule["resources"]) <= {"pods", "events", "secrets"}
            if rule["resources"] == ["secrets"]:
                assert "list" not in rule["verbs"] and "watch" not in rule["verbs"]
            assert "*" not in rule["verbs"]
    # Nothing grants the hub rights in its own namespace (no secrets, no configmaps).
    assert not [r for r in of_kind(manifests, "Role") if r["metadata"]["namespace"] == NAMESPACE]


def test_dask_role_only_where_enabled_and_only_dask(manifests: list) -> None:
    dask = [r for r in of_kind(manifests, "Role") if r["metadata"]["name"] == "cloisonne-dask"]
    assert [r["metadata"]["namespace"] for r in dask] == ["cloisonne-onco"]
    for rule in dask[0]["rules"]:
        if rule["apiGroups"] == [""]:
            assert set(rule["verbs"]) == {"get", "list", "watch"}
            # Never secrets: they hold other members' servers' hub credentials.
            assert set(rule["resources"]) <= {"pods", "pods/log", "services"}
        else:
            assert rule["apiGroups"] == ["kubernetes.dask.org"]


def test_quota_includes_gpus(manifests: list) -> None:
    quotas = {
        q["metadata"]["namespace"]: q["spec"]["hard"] for q in of_kind(manifests, "ResourceQuota")
    }
    assert quotas["cloisonne-onco"]["requests.nvidia.com/gpu"] == "4"
    assert quotas["cloisonne-cardio"]["requests.nvidia.com/gpu"] == "0"
    assert set(quotas) == {f"cloisonne-{p}" for p in PROJECTS}


def test_project_claims_match_the_spawner(manifests: list, hub_config: Any) -> None:
    spawner = hub_config.ProjectKubeSpawner
    for project in PROJECTS:
        claims = {
            c["metadata"]["name"]: c["spec"]["accessModes"]
            for c in of_kind(manifests, "PersistentVolumeClaim")
            if c["metadata"]["namespace"] == f"cloisonne-{project}"
        }
        assert claims == {
            spawner.dataset_claim: ["ReadOnlyMany"],
            spawner.home_claim: ["ReadWriteMany"],
            spawner.shared_claim: ["ReadWriteMany"],
        }


def test_project_s3_reaches_the_spawner(hub_config: Any) -> None:
    assert hub_config.ProjectKubeSpawner.project_s3 == {
        "cardio": {"endpoint_url": "https://s3.example.org", "bucket": "cloisonne-cardio",
                   "secret": "cloisonne-s3"},
        "rare-disease": {"endpoint_url": "http://minio.storage.svc.cluster.local:9000",
                         "bucket": "rare-disease", "secret": "rare-disease-minio"},
    }  # fmt: skip


def test_admin_access_off_and_admins_cannot_enter_workspaces(hub_config: Any) -> None:
    hub = hub_config.JupyterHub
    assert hub.admin_access is False
    assert hub_config.Authenticator.admin_users == set()
    (admin,) = [r for r in hub.load_roles if r["name"] == ADMIN_ROLE]
    assert admin["groups"] == ["tre-admins"]
    granted = expand_scopes(admin["scopes"])
    for scope in granted:
        # No entering servers, no tokens (a token for a user is that user's workspace), no
        # auth state (the user's IdP tokens), no server state, no sharing.
        assert not scope.startswith(("access:", "tokens", "users:tokens", "shares", "read:shares"))
        assert scope not in {
            "admin:users",
            "admin:auth_state",
            "admin:servers",
            "admin:server_state",
        }
    assert "admin-ui" in granted and "servers" in granted
    for role in hub.load_roles:
        assert not any(s.startswith("access:servers") for s in expand_scopes(role["scopes"]))


def test_notes_render(demo_values: dict) -> None:
    chart = helm_python.Chart.load(CHART)
    try:
        out = chart.render(values=demo_values, name="tre", namespace=NAMESPACE)
    finally:
        chart.close()
    notes = out["cloisonne/templates/NOTES.txt"]
    assert "onco: namespace cloisonne-onco, 1 GPU(s) per workspace, Dask" in notes


def test_hub_config_is_the_shared_one(hub_config: Any) -> None:
    """The chart's hub has the local hub's authenticator, gate, audit hooks and service roles
    (a real hub started from the rendered chart: tests/integration/test_chart_hub.py)."""
    hub = hub_config.JupyterHub
    assert hub.spawner_class == "cloisonne.backends.kube.spawner.ProjectKubeSpawner"
    assert hub.hub_connect_url == f"http://hub.{NAMESPACE}.svc.cluster.local:8081"
    assert hub.authenticator_class == "cloisonne.hub.oidc.CloisonneOIDCAuthenticator"
    assert "load_groups" not in hub  # JupyterHub refuses it with manage_groups
    auth = hub_config.CloisonneOIDCAuthenticator
    assert auth.manage_groups and auth.admin_group == "tre-admins"
    assert auth.projects == ["cardio", "onco", "rare-disease"]
    assert callable(hub.named_server_limit_per_user)
    assert callable(hub_config.Spawner.pre_spawn_hook)
    assert callable(hub_config.Authenticator.post_auth_hook)
    assert hub_config.ProjectKubeSpawner.project_namespace_template == "cloisonne-{project}"
    assert hub.db_url.startswith("postgresql+psycopg://jupyterhub:p@postgres.")
