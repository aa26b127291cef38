"""A real JupyterHub started from the Helm chart's rendered configuration, without a cluster.

`helm template` (Helm compiled into helm-python-sdk) renders the chart with the demo values and
with OIDC pointed at the embedded provider (a real OpenID Connect provider); the hub gets the
rendered ConfigMap's files and the environment the rendered Deployment gives its container
(resolved from the rendered Secret and the operator's OIDC client Secret), runs from its
working directory as in the pod, behind a real configurable-http-proxy. Only the cluster's
addresses are replaced, in a wrapper around the rendered jupyterhub_config.py: the hub API binds
127.0.0.1 on a free port instead of ``:8081`` in its own pod, and the proxy API is on 127.0.0.1
instead of the ``proxy-api`` Service. KubeSpawner needs the API server only to spawn, which no
test here does.

The hub must reach /hub/health and then show the project gate, the hub audit events and the
provider's groups mapping at work.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import yaml
from cloisonne.audit.store import AuditStore
from cloisonne.platform.idp import EmbeddedProvider, ensure_client, set_groups, write_accounts
from jupyterhub import orm

from ..backends.kube.conftest import DEMO_VALUES, render
from .conftest import free_port
from .oidc_login import login

REPO = Path(__file__).resolve().parents[2]
CHP = REPO / ".node" / "node_modules" / ".bin" / "configurable-http-proxy"
ADMIN_GROUP = "tre-admins"  # the demo values' hub.adminGroups
ACCOUNTS = {
    "alice": ("a-pw", ["project-cardio", "unrelated-group"]),
    "bob": ("b-pw", ["project-cardio", "project-onco", "project-onco-leads"]),
    "eve": ("e-pw", ["staff"]),
    "root": ("r-pw", [ADMIN_GROUP]),
}
WRAPPER = """\
# The chart's jupyterhub_config.py, as the ConfigMap mounts it; then only the cluster's addresses.
rendered = {rendered!r}
exec(compile(open(rendered).read(), rendered, "exec"), {{"c": c}})  # noqa: F821
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"  # noqa: F821
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"  # noqa: F821
"""


def container_env(manifests: list[dict], name: str, secrets: dict[str, dict[str, str]]) -> dict:
    """The environment the rendered Deployment ``name`` gives its first container."""
    (deployment,) = [
        m for m in manifests if m["kind"] == "Deployment" and m["metadata"]["name"] == name
    ]
    env = {}
    for var in deployment["spec"]["template"]["spec"]["containers"][0].get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "secretKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secrets[ref["name"]][ref["key"]]
    return env


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def chart_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """(hub url, service token, hub database URL, rendered site) for a hub from the chart."""
    tmp = tmp_path_factory.mktemp("chart-hub")
    proxy_port, api_port, hub_port, idp_port = (free_port() for _ in range(4))
    public = f"http://127.0.0.1:{proxy_port}"
    provider = EmbeddedProvider(tmp / "idp", idp_port)
    write_accounts(
        provider.data,
        {name: pw for name, (pw, _) in ACCOUNTS.items()},
        {name: groups for name, (_, groups) in ACCOUNTS.items()},
    )
    client = ensure_client(provider.data, f"{public}/hub/oauth_callback")

    values: dict[str, Any] = copy.deepcopy(yaml.safe_load(DEMO_VALUES.read_text()))
    values["auth"]["oidc"] = {
        "issuer": provider.issuer,
        "authorizeUrl": f"{provider.issuer}/auth",
        "tokenUrl": f"{provider.issuer}/token",
        "userdataUrl": f"{provider.issuer}/me",
        "clientId": client.client_id,
        "clientSecretRef": {"name": "oidc-client", "key": "secret"},
        "callbackUrl": f"{public}/hub/oauth_callback",
    }
    # No PostgreSQL server at postgres.databases.svc here: the chart's SQLite on the hub volume.
    values["hub"]["db"] = {"type": "sqlite"}
    # the package proxy is a pod of its own that needs PostgreSQL (tests/backends/kube test it)
    values["packages"]["enabled"] = False
    manifests = render(values)
    (configmap,) = [
        m for m in manifests if m["kind"] == "ConfigMap" and m["metadata"]["name"] == "hub"
    ]
    (secret,) = [m for m in manifests if m["kind"] == "Secret" and m["metadata"]["name"] == "hub"]
    etc, data = tmp / "etc", tmp / "srv"
    etc.mkdir()
    data.mkdir()
    for name, text in configmap["data"].items():
        (etc / name).write_text(text)
    secrets = {"hub": secret["stringData"], "oidc-client": {"secret": client.client_secret}}
    env = container_env(manifests, "hub", secrets)
    env["CLOISONNE_SITE_CONFIG"] = str(etc / "cloisonne.yaml")  # the ConfigMap's mount here
    (tmp / "wrapper.py").write_text(
        WRAPPER.format(rendered=str(etc / "jupyterhub_config.py"), hub_port=hub_port,
                       api_port=api_port)
    )  # fmt: skip
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOISONNE_", "JPY"))}
    procs: list[subprocess.Popen] = []
    provider.start()
    try:
        procs.append(subprocess.Popen(
            [str(CHP), "--ip=127.0.0.1", f"--port={proxy_port}", "--api-ip=127.0.0.1",
             f"--api-port={api_port}", f"--default-target=http://127.0.0.1:{hub_port}",
             f"--error-target=http://127.0.0.1:{hub_port}/hub/error"],
            env={**base_env, "CONFIGPROXY_AUTH_TOKEN": env["CONFIGPROXY_AUTH_TOKEN"]},
            stdout=open(tmp / "proxy.log", "wb"), stderr=subprocess.STDOUT,
        ))  # fmt: skip
        hub_log = tmp / "hub.log"
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(tmp / "wrapper.py")],
            cwd=data,  # the pod's workingDir, its volume
            env={**base_env, **env}, stdout=open(hub_log, "wb"), stderr=subprocess.STDOUT,
        ))  # fmt: skip
        deadline = time.monotonic() + 90
        while True:
            assert procs[1].poll() is None, f"the hub exited:\n{hub_log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"no /hub/health:\n{hub_log.read_text()[-4000:]}"
            try:
                if requests.get(f"{public}/hub/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        db_url = f"sqlite:///{data / 'jupyterhub.sqlite'}"
        yield SimpleNamespace(url=public, token=env["CLOISONNE_SERVICE_TOKEN"], db_url=db_url,
                              log=hub_log, idp=provider.data)  # fmt: skip
    finally:
        for proc in reversed(procs):
            stop(proc)
        provider.stop()


def api(hub: SimpleNamespace, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(
        method, f"{hub.url}/hub/api{path}", headers={"Authorization": f"token {hub.token}"},
        timeout=30, **kw,
    )  # fmt: skip


def events(hub: SimpleNamespace, event_type: str) -> list[Any]:
    store = AuditStore(hub.db_url)
    try:
        return [e for e in store.iter_events() if e.type == event_type]
    finally:
        store.close()


def test_hub_from_the_chart_is_healthy_with_the_shared_configuration(chart_hub) -> None:
    log = chart_hub.log.read_text()
    assert "CloisonneOIDCAuthenticator" in log
    assert "Group management has been offloaded" not in log
    assert requests.get(f"{chart_hub.url}/hub/health", timeout=5).ok


def test_groups_claim_is_mapped_to_project_groups_at_login(chart_hub) -> None:
    result = login(chart_hub, "bob", "b-pw")
    assert result.ok, result.response.text[:500]
    bob = api(chart_hub, "GET", "/users/bob").json()
    assert sorted(bob["groups"]) == ["cardio", "onco", "onco-leads"]
    # the project groups were prepared with the chart's project settings before the hub began
    onco = api(chart_hub, "GET", "/groups/onco").json()
    assert onco["properties"]["gpus"] == 1 and onco["properties"]["approvals_required"] == 1


def test_someone_in_no_project_is_refused_with_a_page_saying_so(chart_hub) -> None:
    result = login(chart_hub, "eve", "e-pw")
    assert result.response.status_code == 403
    assert "not a member or lead of any research project" in result.response.text


def test_project_gate_refuses_a_server_that_is_not_a_project(chart_hub) -> None:
    result = login(chart_hub, "alice", "a-pw")
    assert result.ok
    s = result.session
    refused = s.get(f"{chart_hub.url}/hub/spawn/alice/onco", timeout=30)
    assert refused.status_code == 403
    assert "is not one of alice&#39;s projects" in refused.text or (
        "is not one of alice's projects" in refused.text
    )
    bad = s.get(f"{chart_hub.url}/hub/spawn/alice/not_a..project", timeout=30)
    assert bad.status_code == 400 and "not a project id" in bad.text
    session = orm.new_session_factory(chart_hub.db_url)()
    try:  # nothing half-created (the default server's row exists for every user)
        assert [s.name for s in orm.User.find(session, "alice").orm_spawners.values()] == [""]
    finally:
        session.close()


def test_hub_audit_events_are_recorded(chart_hub) -> None:
    assert login(chart_hub, "alice", "a-pw").ok
    logins = [e for e in events(chart_hub, "hub.login") if e.user == "alice"]
    assert logins and logins[-1].fields["remote_ip"] == "127.0.0.1"
    # bob stops leading onco at the provider: his next login records it
    assert login(chart_hub, "bob", "b-pw").ok
    set_groups(chart_hub.idp, "bob", ["project-cardio", "project-onco"])
    assert login(chart_hub, "bob", "b-pw").ok
    removed = events(chart_hub, "hub.membership_removed")
    assert [(e.user, e.project, e.fields["role"]) for e in removed] == [("bob", "onco", "lead")]


def test_admin_group_gets_the_admin_panel_but_no_workspace(chart_hub) -> None:
    result = login(chart_hub, "root", "r-pw")
    assert result.ok
    assert result.session.get(f"{chart_hub.url}/hub/admin", timeout=30).status_code == 200
    # an admin changing a project's settings is audited
    xsrf = result.session.cookies.get("_xsrf", path="/hub/")
    r = result.session.put(
        f"{chart_hub.url}/hub/api/groups/cardio/properties",
        json={"title": "Edited", "datasets": [], "approvals_required": 2},
        headers={"X-XSRFToken": xsrf or "", "Referer": f"{chart_hub.url}/hub/admin"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    # recorded by the hub's request log, which tornado calls after the answer is sent
    deadline = time.monotonic() + 10
    while not any(e.user == "root" and e.fields["target"] == "cardio"
                  for e in events(chart_hub, "hub.group_change")):  # fmt: skip
        assert time.monotonic() < deadline, "no hub.group_change event for the admin's edit"
        time.sleep(0.1)
    # no token as alice (a token for a user is that user's workspace); JupyterHub answers 404
    # for what the caller may not see
    minted = result.session.post(
        f"{chart_hub.url}/hub/api/users/alice/tokens", json={},
        headers={"X-XSRFToken": xsrf or "", "Referer": f"{chart_hub.url}/hub/admin"}, timeout=30,
    )  # fmt: skip
    assert minted.status_code in (403, 404), minted.text
