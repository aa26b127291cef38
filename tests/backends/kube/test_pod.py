"""WorkspacePlan -> pod: the demo projects' pods validate strictly and carry the guarantees."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from cloisonne.backends.kube.pod import (
    KubeSettings,
    dask_pod_spec,
    label_value,
    memory_quantity,
    namespace_for,
    pod_manifest,
)
from cloisonne.core.plan import Endpoint, Mount, PlanSettings, User, plan_workspace
from cloisonne.core.projects import Limits, Project
from kubernetes_asyncio.client.exceptions import ApiException
from tornado import web

from .conftest import validate_strict

# Every (member, project) pair of the demo values.
MEMBERS = [
    ("alice", "cardio"),
    ("bob", "cardio"),
    ("bob", "onco"),
    ("dave", "onco"),
    ("bob", "rare-disease"),
    ("erin", "rare-disease"),
]


@pytest.fixture(scope="module")
def pods(spawn: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(u, p): spawn(u, p, lambda s: s.pod_manifest_dict()) for u, p in MEMBERS}


def container(pod: dict[str, Any]) -> dict[str, Any]:
    (main,) = pod["spec"]["containers"]
    return main


@pytest.mark.parametrize(("user", "project"), MEMBERS)
def test_demo_pod_validates_strictly(pods: dict, user: str, project: str) -> None:
    pod = pods[user, project]
    validate_strict(pod)
    assert pod["metadata"]["namespace"] == f"cloisonne-{project}"
    assert pod["metadata"]["labels"]["cloisonne.io/project"] == project
    assert pod["metadata"]["labels"]["cloisonne.io/component"] == "workspace"
    # KubeSpawner's own bookkeeping label is kept: its pod reflector selects on it.
    assert pod["metadata"]["labels"]["component"] == "singleuser-server"


@pytest.mark.parametrize(("user", "project"), MEMBERS)
def test_restricted_security_context(pods: dict, user: str, project: str) -> None:
    spec = pods[user, project]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 1000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"] >= 300000
    ctx = container(pods[user, project])["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["privileged"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["readOnlyRootFilesystem"] is True
    assert spec["enableServiceLinks"] is False
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(key)
    assert not any("hostPath" in v for v in spec["volumes"])


@pytest.mark.parametrize(("user", "project"), MEMBERS)
def test_server_is_pid_1_of_its_own_container_and_never_restarted(
    pods: dict, user: str, project: str
) -> None:
    spec = pods[user, project]["spec"]
    assert spec["shareProcessNamespace"] is False
    assert spec["restartPolicy"] == "Never"
    main = container(pods[user, project])
    assert main["command"][0] == "jupyterhub-singleuser"  # replaces the image's entrypoint
    for probe in ("livenessProbe", "readinessProbe"):
        assert main[probe]["tcpSocket"] == {"port": "notebook-port"}
        assert main[probe]["periodSeconds"] * main[probe]["failureThreshold"] <= 2


def test_hub_polls_workspace_pods_every_second(spawn: Any) -> None:
    assert spawn("alice", "cardio", lambda s: s.poll_interval) <= 1


def test_service_account_token_only_for_dask(pods: dict) -> None:
    assert pods["bob", "cardio"]["spec"]["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pods["bob", "cardio"]["spec"]
    onco = pods["bob", "onco"]["spec"]  # dask: true in the demo values
    assert onco["automountServiceAccountToken"] is True
    assert onco["serviceAccountName"] == "cloisonne-dask"


def test_mounts_map_plan_volumes_to_project_claims(pods: dict) -> None:
    pod = pods["alice", "cardio"]
    mounts = {m["mountPath"]: m for m in container(pod)["volumeMounts"]}
    assert mounts["/data/dcir-sample"] == {
        "name": "data", "mountPath": "/data/dcir-sample", "subPath": "dcir-sample",
        "readOnly": True,
    }  # fmt: skip
    assert mounts["/home/alice"]["subPath"] == "cardio/alice"
    assert not mounts["/home/alice"].get("readOnly")
    assert mounts["/shared"]["subPath"] == "cardio"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {
        "claimName": "cloisonne-data",
        "readOnly": True,
    }
    assert volumes["home"]["persistentVolumeClaim"]["claimName"] == "cloisonne-home"
    assert volumes["shared"]["persistentVolumeClaim"]["claimName"] == "cloisonne-shared"
    # Another member's pod in the same project gets their own home sub-path only.
    other = {m["mountPath"]: m for m in container(pods["bob", "cardio"])["volumeMounts"]}
    assert other["/home/bob"]["subPath"] == "cardio/bob"
    assert "/home/alice" not in other


def test_gpu_limit_image_and_placement(pods: dict) -> None:
    onco = pods["dave", "onco"]
    assert container(onco)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container(onco)["image"].endswith("singleuser-gpu:0.1.0")
    env = {e["name"]: e.get("value") for e in container(onco)["env"]}
    assert env["JUPYTER_IMAGE"] == container(onco)["image"]
    assert "NVIDIA_VISIBLE_DEVICES" not in env  # the device plugin sets it
    assert onco["spec"]["nodeSelector"] == {
        "cloisonne.io/pool": "gpu",
        "nvidia.com/gpu.present": "true",
    }
    keys = {t["key"] for t in onco["spec"]["tolerations"]}
    assert keys == {"nvidia.com/gpu", "cloisonne.io/dedicated"}

    cardio = pods["alice", "cardio"]
    assert "nvidia.com/gpu" not in container(cardio)["resources"]["limits"]
    assert "nodeSelector" not in cardio["spec"] and "tolerations" not in cardio["spec"]
    env = {e["name"]: e.get("value") for e in container(cardio)["env"]}
    # CUDA images default to all GPUs; a pod without a GPU limit must see none.
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"


def test_limits_and_requests(pods: dict) -> None:
    res = container(pods["dave", "onco"])["resources"]
    assert res["limits"]["cpu"] == "500m" and res["limits"]["memory"] == "1Gi"
    assert res["requests"]["memory"] == res["limits"]["memory"]
    assert res["requests"]["cpu"] == "125m"
    ann = pods["dave", "onco"]["metadata"]["annotations"]
    assert ann["cloisonne.io/pids-limit"] == "256"


def test_hub_env_present_and_plan_env_wins(pods: dict) -> None:
    env = {e["name"]: e.get("value") for e in container(pods["bob", "onco"])["env"]}
    assert env["JUPYTERHUB_API_URL"].startswith("http://hub.cloisonne.svc.cluster.local:8081")
    assert env["CLOISONNE_PROJECT"] == "onco"
    assert env["JUPYTER_PREFER_ENV_PATH"] == "1"
    assert env["JUPYTER_CONFIG_DIR"] == "/opt/cloisonne/jupyter"


def test_non_member_and_default_server_are_refused(spawn: Any) -> None:
    """The same rules as the local backend (backends/gate.resolve_project)."""
    with pytest.raises(web.HTTPError) as err:
        spawn("alice", "onco", lambda s: s.pod_manifest_dict())
    assert err.value.status_code == 403
    # a member of several projects must name one; a member of one gets it as default server
    with pytest.raises(web.HTTPError) as err:
        spawn("bob", "", lambda s: s.pod_manifest_dict())
    assert err.value.status_code == 400 and "several projects" in str(err.value)
    pod = spawn("alice", "", lambda s: s.pod_manifest_dict())
    assert pod["metadata"]["namespace"] == "cloisonne-cardio"


class FakeCoreV1:
    """The few CoreV1Api calls the spawner makes for the credentials Secret."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.api_client: Any = None

    async def delete_namespaced_secret(self, name: str, namespace: str) -> None:
        self.calls.append(("delete", (namespace, name)))
        raise ApiException(status=404)

    async def read_namespaced_secret(self, name: str, namespace: str) -> None:
        raise ApiException(status=404)

    async def create_namespaced_secret(self, namespace: str, body: Any) -> None:
        self.calls.append(("create", (namespace, body)))

    async def patch_namespaced_secret(self, name: str, namespace: str, body: Any) -> None:
        self.calls.append(("patch", (namespace, name, body)))


def test_hub_credentials_live_in_a_secret_not_in_the_pod(spawn: Any) -> None:
    """A colleague's Dask service account can read pods in the namespace: the server's hub
    token must not be in the pod spec."""
    fake = FakeCoreV1()

    async def run(spawner: Any) -> Any:
        spawner.api_token = "tok-of-bob-onco"
        real, spawner.api = spawner.api, fake
        fake.api_client = real.api_client
        try:
            pod = await spawner.get_pod_manifest()
            hook = spawner.after_pod_created_hook
            await hook(spawner, {"metadata": {"name": spawner.pod_name, "uid": "u-1"}})
            assert pod.metadata.namespace == "cloisonne-onco"
            assert pod.spec.security_context.run_as_non_root is True
            secret = fake.calls[1][1][1]
            serialize = real.api_client.sanitize_for_serialization
            return serialize(pod), serialize(secret), spawner.pod_name
        finally:
            spawner.api = real

    manifest, secret, name = spawn("bob", "onco", run)
    assert "tok-of-bob-onco" not in json.dumps(manifest)
    env = {e["name"]: e for e in manifest["spec"]["containers"][0]["env"]}
    ref = {"secretKeyRef": {"name": name, "key": "jupyterhub-api-token"}}
    assert env["JUPYTERHUB_API_TOKEN"] == {"name": "JUPYTERHUB_API_TOKEN", "valueFrom": ref}
    (delete, create, patch) = fake.calls
    assert delete == ("delete", ("cloisonne-onco", name))
    assert create[1][0] == "cloisonne-onco"
    assert secret["stringData"]["jupyterhub-api-token"] == "tok-of-bob-onco"
    validate_strict({**secret, "metadata": {**secret["metadata"], "namespace": "cloisonne-onco"}})
    owner = patch[1][2]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Pod", name, "u-1")


def test_spawner_namespace_follows_project(spawn: Any) -> None:
    assert spawn("bob", "rare-disease", lambda s: s.namespace) == "cloisonne-rare-disease"


# -- the pure compiler on its own -------------------------------------------------------------

SETTINGS = PlanSettings(
    datasets_root="pvc:data",
    homes_root="pvc:home",
    shared_root="pvc:shared",
    hub_api=Endpoint("hub.cloisonne.svc.cluster.local", 8081, "hub API"),
)


def test_odd_user_names_get_valid_labels() -> None:
    project = Project(id="p1", datasets=("d",))
    name = "x" * 63 + "."
    plan = plan_workspace(project, User(name, 1000), SETTINGS, project_index=1)
    pod = pod_manifest(plan, KubeSettings(), name="jupyter-x")
    validate_strict(pod)
    assert pod["metadata"]["annotations"]["cloisonne.io/user"] == name
    assert label_value(name) != label_value("x" * 63 + "_")
    assert label_value("alice") == "alice"


def test_allowlist_recorded_in_annotation() -> None:
    project = Project(id="p1")
    plan = plan_workspace(project, User("u", 1000), SETTINGS, project_index=1)
    pod = pod_manifest(plan, KubeSettings(), name="jupyter-u")
    allow = json.loads(pod["metadata"]["annotations"]["cloisonne.io/allow"])
    assert [(e["host"], e["port"]) for e in allow] == [(e.host, e.port) for e in plan.allow]


def test_unknown_volume_is_an_error_system_mounts_are_image_provided() -> None:
    plan = plan_workspace(Project(id="p1"), User("u", 1000), SETTINGS, project_index=1)
    system = Mount("/usr", "/usr", True, "system")
    pod = pod_manifest(
        dataclasses.replace(plan, mounts=(*plan.mounts, system)), KubeSettings(), name="x"
    )
    assert "/usr" not in {m["mountPath"] for m in container(pod)["volumeMounts"]}
    odd = Mount("/srv/x", "/x", False, "scratch")
    with pytest.raises(ValueError, match="no Kubernetes volume"):
        pod_manifest(dataclasses.replace(plan, mounts=(odd,)), KubeSettings(), name="x")


def test_namespace_must_be_a_dns_label() -> None:
    assert namespace_for("cardio", KubeSettings()) == "cloisonne-cardio"
    with pytest.raises(ValueError):
        namespace_for("a" * 60, KubeSettings())


def test_quantities() -> None:
    assert memory_quantity(2 * 1024**3) == "2Gi"
    assert memory_quantity(1536 * 1024**2) == "1536Mi"
    plan = plan_workspace(
        Project(id="p1", limits=Limits(cpu=1.5, memory_bytes=3 * 1024**3, gpus=2)),
        User("u", 1000),
        SETTINGS,
        project_index=1,
    )
    res = pod_manifest(plan, KubeSettings(), name="x")["spec"]["containers"][0]["resources"]
    assert res["limits"] == {"cpu": "1500m", "memory": "3Gi", "nvidia.com/gpu": "2"}


def test_dask_pod_spec_validates_and_has_no_home() -> None:
    plan = plan_workspace(
        Project(id="p1", datasets=("d",)), User("u", 1000), SETTINGS, project_index=1
    )
    spec = dask_pod_spec(plan, KubeSettings(), role="worker", command=["dask", "worker"])
    validate_strict({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w"}, "spec": spec})
    paths = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    assert paths == {"/data/d", "/shared", "/tmp"}
    assert spec["automountServiceAccountToken"] is False
    assert spec["containers"][0]["workingDir"] == "/shared"


def test_s3_variables_and_a_credential_only_from_the_projects_own_secret(pods: dict) -> None:
    """cardio: endpoint and bucket in the plan, keys from Secret cloisonne-s3 in its namespace;
    rare-disease: its own named Secret; onco (no endpointUrl/bucket): no S3 variables."""
    for (user, project), secret, url in (
        (("alice", "cardio"), "cloisonne-s3", "https://s3.example.org"),
        (("erin", "rare-disease"), "rare-disease-minio",
         "http://minio.storage.svc.cluster.local:9000"),
    ):  # fmt: skip
        env = {e["name"]: e for e in container(pods[user, project])["env"]}
        assert env["AWS_ENDPOINT_URL"]["value"] == url
        assert env["CLOISONNE_S3_URL"]["value"].startswith("s3://")
        for name, key in (("AWS_ACCESS_KEY_ID", "aws-access-key-id"),
                          ("AWS_SECRET_ACCESS_KEY", "aws-secret-access-key")):  # fmt: skip
            assert env[name] == {"name": name,
                                 "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}  # fmt: skip
    onco = {e["name"] for e in container(pods["bob", "onco"])["env"]}
    assert not {n for n in onco if n.startswith(("AWS_", "CLOISONNE_S3"))}
