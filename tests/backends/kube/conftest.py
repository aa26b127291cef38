"""Fixtures for the Kubernetes distribution: the chart rendered with the demo values, the hub
configuration built from it, and spawners for demo users (no cluster is contacted)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cloisonne.hub.kube import configure, load_site, site_projects
from helm_python import Chart
from traitlets.config import Config

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "helm" / "cloisonne"
DEMO_VALUES = CHART / "ci" / "demo-values.yaml"
RELEASE, NAMESPACE = "tre", "cloisonne"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schema.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
HUB_API = f"http://hub.{NAMESPACE}.svc.cluster.local:8081/hub/api"

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


# KubeSpawner loads a client configuration when constructed; give it one that points nowhere
# (nothing here talks to a cluster). Set at import: kubernetes_asyncio reads KUBECONFIG when
# it is first imported, which test modules may do at collection.
_KUBE_DIR = tempfile.mkdtemp(prefix="cloisonne-kubeconfig-")
Path(_KUBE_DIR, "config").write_text(KUBECONFIG)
os.environ["KUBECONFIG"] = str(Path(_KUBE_DIR, "config"))


def validate_strict(obj: dict[str, Any]) -> None:
    """Validate against the Kubernetes schemas; strict = unknown fields are errors."""
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(obj, version, strict=True)


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    chart = Chart.load(CHART)
    try:
        out = chart.render(values=values, name=RELEASE, namespace=NAMESPACE)
    finally:
        chart.close()
    docs = []
    for path, text in sorted(out.items()):
        if not path.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
                doc["_template"] = path
                docs.append(doc)
    return docs


@pytest.fixture(scope="session")
def demo_values() -> dict[str, Any]:
    return yaml.safe_load(DEMO_VALUES.read_text())


@pytest.fixture(scope="session")
def manifests(demo_values: dict[str, Any]) -> list[dict[str, Any]]:
    return render(demo_values)


@pytest.fixture(scope="session")
def site_file(manifests: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    (configmap,) = [
        m for m in manifests if m["kind"] == "ConfigMap" and m["metadata"]["name"] == "hub"
    ]
    path = tmp_path_factory.mktemp("hub") / "cloisonne.yaml"
    path.write_text(configmap["data"]["cloisonne.yaml"])
    return path


@pytest.fixture(scope="session")
def hub_config(site_file: Path) -> Config:
    c = Config()
    env = {"CLOISONNE_SERVICE_TOKEN": "t", "HUB_DB_PASSWORD": "p"}
    configure(c, site_file, env, prepare_db=False)  # the demo's PostgreSQL is not here
    return c


@pytest.fixture(scope="session")
def site_specs(site_file: Path) -> list[Any]:
    return site_projects(load_site(site_file))


def hub_user(specs: list[Any], name: str, uid: int = 7) -> SimpleNamespace:
    """A hub user as KubeSpawner sees it, in the project groups the chart's projects name
    (on a real hub the provider's groups claim puts them there at login)."""
    groups = [
        # ids as the hub gives them: each project's group, then its leads group
        SimpleNamespace(
            name=spec.project.id, id=2 * index + 1, properties=spec.project.to_properties()
        )
        for index, spec in enumerate(specs)
        if name in spec.members
    ]
    return SimpleNamespace(name=name, id=uid, url=f"/user/{name}/", groups=groups)


@pytest.fixture(scope="session")
def spawn(
    hub_config: Config, site_specs: list[Any], manifests: list[dict[str, Any]]
) -> Callable[..., Any]:
    """spawn(user, project, fn) -> fn(spawner), run inside an event loop (KubeSpawner needs one).
    The hub's environment has what the chart's hub Deployment gives it from its Secret."""
    from cloisonne.backends.kube.spawner import ProjectKubeSpawner

    (secret,) = [m for m in manifests if m["kind"] == "Secret" and m["metadata"]["name"] == "hub"]
    hub_env = {"CLOISONNE_PACKAGES_KEY": secret["stringData"]["packages-key"]}

    def run(user: str, project: str, fn: Callable[[Any], Any]) -> Any:
        os.environ.update(hub_env)

        async def main() -> Any:
            spawner = ProjectKubeSpawner(
                _mock=True,
                config=hub_config,
                user=hub_user(site_specs, user),
                orm_spawner=SimpleNamespace(name=project, server=None),
                hub=SimpleNamespace(api_url=HUB_API, public_host="", url="/hub/", base_url="/"),
            )
            result = fn(spawner)
            if asyncio.iscoroutine(result):
                result = await result
            await spawner.api.api_client.close()
            return result

        return asyncio.run(main())

    return run
