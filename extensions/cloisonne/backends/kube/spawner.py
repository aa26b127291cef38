"""ProjectKubeSpawner: KubeSpawner compiling the WorkspacePlan into a pod in the project namespace.

Everything the workspace gets is decided by ``plan_workspace`` (shared with the sandbox
backend) and compiled by the pure ``pod_manifest``; this class only reads traitlets, resolves
the project from the user's JupyterHub groups and hands the pod to KubeSpawner, which creates,
watches and deletes it.

One named server per project: the server name is the project id, and the pod runs in that
project's namespace. The hub's RBAC (from the Helm chart) is a Role in each project namespace,
so KubeSpawner's per-namespace reflectors are used (``enable_user_namespaces`` stays off: it
would need cluster-wide rights).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
from functools import partial
from typing import Any
from urllib.parse import urlparse

from jupyterhub.utils import exponential_backoff
from kubernetes_asyncio.client import ApiClient
from kubespawner import KubeSpawner
from tornado import web
from traitlets import Dict, Float, Integer, List, Unicode, default

from ...core.lifecycle import ProjectRules
from ...core.plan import (
    Endpoint,
    PlanSettings,
    ProjectData,
    ServerEnv,
    User,
    WorkspacePlan,
    plan_workspace,
)
from ...core.values import parse_host_port
from ...core.workspace_proof import STATE_KEY, WorkspaceProof, new_proof
from ...data.s3 import public_env
from ...workspace.server_args import guard_server_args
from ..gate import check_lifecycle, resolve_project
from .pod import (
    SECRET_ENV,
    KubeSettings,
    Placement,
    Toleration,
    namespace_for,
    pod_manifest,
    token_secret,
)


class _Response:
    """What ApiClient.deserialize reads: a JSON body (its public way to build model objects)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = json.dumps(data)


def to_v1(manifest: dict[str, Any], kind: str, client: ApiClient) -> Any:
    """A kubernetes_asyncio model object (V1Pod, V1Secret) from a manifest dict, as
    KubeSpawner's request helpers expect (``client``: the spawner's shared API client)."""
    return client.deserialize(_Response(manifest), kind)


async def _adopt_token_secret(spawner: ProjectKubeSpawner, pod: dict[str, Any]) -> None:
    """Make the pod the owner of its credentials Secret (garbage-collected with it)."""
    owner = {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": pod["metadata"]["name"],
        "uid": pod["metadata"]["uid"],
        "blockOwnerDeletion": True,
    }
    await asyncio.wait_for(
        spawner.api.patch_namespaced_secret(
            spawner.token_secret_name(),
            spawner.namespace,
            {"metadata": {"ownerReferences": [owner]}},
        ),
        spawner.k8s_api_request_timeout,
    )


def _toleration(item: dict[str, Any]) -> Toleration:
    return Toleration(
        key=item["key"],
        operator=item.get("operator", "Exists"),
        value=item.get("value", ""),
        effect=item.get("effect", ""),
    )


def placements_from_config(config: dict[str, Any]) -> dict[str, Placement]:
    """Parse ``{project: {node_selector: {}, tolerations: [], dask: bool}}``."""
    out = {}
    for project, item in config.items():
        unknown = set(item) - {"node_selector", "tolerations", "dask"}
        if unknown:
            raise ValueError(f"project_placements[{project!r}]: unknown keys {sorted(unknown)}")
        out[project] = Placement(
            node_selector=tuple(sorted((item.get("node_selector") or {}).items())),
            tolerations=tuple(_toleration(t) for t in item.get("tolerations") or ()),
            dask=bool(item.get("dask", False)),
        )
    return out


def parse_endpoint(text: str, purpose: str) -> Endpoint:
    return Endpoint(*parse_host_port(text), purpose)


class ProjectKubeSpawner(KubeSpawner):
    """Spawn one workspace pod per (user, project) from the project's WorkspacePlan."""

    project_namespace_template = Unicode(
        "cloisonne-{project}",
        config=True,
        help="""Namespace of a project's workspaces; ``{project}`` is the project id.

        The Helm chart creates one namespace per project with its PVCs, quota, NetworkPolicies
        and the hub's Role; it must use the same template.
        """,
    )
    dataset_claim = Unicode(
        "cloisonne-data",
        config=True,
        help="PVC (in each project namespace) holding the project's datasets, mounted read-only.",
    )
    home_claim = Unicode(
        "cloisonne-home",
        config=True,
        help="PVC (in each project namespace) holding the homes, one sub-path per user.",
    )
    shared_claim = Unicode(
        "cloisonne-shared",
        config=True,
        help="PVC (in each project namespace) holding the project's shared folder.",
    )
    workspace_uid = Integer(
        1000,
        config=True,
        help="uid of the workspace process: 1000 is jovyan in the Jupyter docker-stacks images.",
    )
    project_gid_base = Integer(
        300000,
        config=True,
        help="A project's gid (its pods' group and fsGroup) is this plus its hub group id.",
    )
    cpu_request_ratio = Float(
        0.25,
        config=True,
        help="""CPU request as a fraction of the project's CPU limit.

        Memory is always requested at its limit (an overcommitted node kills workspaces); CPU
        is compressible, so workspaces may share idle cores.
        """,
    )
    gpu_resource = Unicode(
        "nvidia.com/gpu",
        config=True,
        help="Extended resource name of a GPU, as advertised by the device plugin.",
    )
    gpu_image = Unicode(
        "",
        config=True,
        help="Image for projects with GPUs (singleuser-gpu); empty: ``image`` for all.",
    )
    gpu_node_selector = Dict(
        {"nvidia.com/gpu.present": "true"},
        config=True,
        help="Node selector added to pods with GPUs (the GPU operator labels GPU nodes so).",
    )
    gpu_tolerations = List(
        [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        config=True,
        help="Tolerations added to pods with GPUs, matching the taints on GPU nodes.",
    )
    project_placements = Dict(
        {},
        config=True,
        help="""Per-project scheduling and Dask: ``{project: {"node_selector": {...},
        "tolerations": [...], "dask": bool}}``.

        ``dask: true`` mounts a service-account token (the chart's ``cloisonne-dask`` account,
        allowed to manage Dask clusters in the project namespace only) into the workspace.
        """,
    )
    dask_service_account = Unicode(
        "cloisonne-dask",
        config=True,
        help="Service account of workspaces in projects with Dask enabled.",
    )
    tmp_size = Unicode(
        "1Gi",
        config=True,
        help="Size limit of the workspace's /tmp (the root filesystem is read-only).",
    )
    extra_endpoints = List(
        Unicode(),
        [],
        config=True,
        help="""'host:port' endpoints every workspace may reach besides the hub API (the
        cloisonne service). Recorded in the plan; the chart's NetworkPolicies enforce them.""",
    )
    package_index = Unicode(
        "",
        config=True,
        help="""'host:port' of the package proxy (the chart's cloisonne-packages Service):
        workspaces may reach it and pip uses their project's index there. Empty: none.""",
    )
    package_key_env = Unicode(
        "CLOISONNE_PACKAGES_KEY",
        config=True,
        help="""Environment variable of the hub holding the key the proxy checks workspace
        credentials with (the chart sets it from the hub Secret).""",
    )
    image_python_prefix = Unicode(
        "/opt/conda",
        config=True,
        help="sys.prefix of the Python environment in the singleuser image (docker-stacks: "
        "/opt/conda); the guard serves only the labextensions installed there.",
    )
    plan_environment = Dict(
        {},
        config=True,
        help="""Environment pinned in every workspace plan (e.g. JUPYTER_CONFIG_DIR pointing to
        the image's read-only guard config). Applied after KubeSpawner's ``environment``.""",
    )

    project_s3 = Dict(
        {},
        config=True,
        help="""Per project id: {'endpoint_url': 'https://s3.example.org', 'bucket': 'cardio',
        'secret': 'cloisonne-s3'}. Its workspaces (and Dask pods) get the S3 variables and the
        credential from that Secret, which the site creates in the project's namespace with
        keys aws-access-key-id and aws-secret-access-key. The endpoint itself is opened by the
        project's egress (the chart's projects[].s3).""",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The namespace depends only on the server name (= project id), so set it before any
        # reflector starts; load_state() restores it for running servers after a hub restart.
        if self.name:
            self.namespace = namespace_for(self.name, self.kube_settings())
            self.dns_name = self.dns_name_template.format(
                namespace=self.namespace, name=self.pod_name
            )

    def kube_settings(self) -> KubeSettings:
        return KubeSettings(
            namespace_template=self.project_namespace_template,
            dataset_claim=self.dataset_claim,
            home_claim=self.home_claim,
            shared_claim=self.shared_claim,
            uid=self.workspace_uid,
            cpu_request_ratio=self.cpu_request_ratio,
            gpu_resource=self.gpu_resource,
            gpu_node_selector=tuple(sorted(self.gpu_node_selector.items())),
            gpu_tolerations=tuple(_toleration(t) for t in self.gpu_tolerations),
            placements=placements_from_config(self.project_placements),
            dask_service_account=self.dask_service_account,
            image_pull_policy=self.image_pull_policy or "IfNotPresent",
            image_pull_secrets=tuple(
                s if isinstance(s, str) else s["name"] for s in self.image_pull_secrets or ()
            ),
            tmp_size=self.tmp_size,
            priority_class=self.priority_class_name or "",
            s3_secrets={
                p: str(v.get("secret") or "cloisonne-s3") for p, v in self.project_s3.items()
            },  # fmt: skip
        )

    def plan_settings(self) -> PlanSettings:
        api = urlparse(self.hub.api_url)
        hub_api = Endpoint(api.hostname or "hub", api.port or 8081, "hub API")
        return PlanSettings(
            # Sources are PVCs on Kubernetes: the pod compiler uses volume + sub_path only.
            datasets_root=f"pvc:{self.dataset_claim}",
            homes_root=f"pvc:{self.home_claim}",
            shared_root=f"pvc:{self.shared_claim}",
            hub_api=hub_api,
            project_gid_base=self.project_gid_base,
            extra_endpoints=tuple(parse_endpoint(e, "service") for e in self.extra_endpoints),
            image=self.image,
            gpu_image=self.gpu_image,
            extra_env=tuple(sorted(self.plan_environment.items())),
            **self._package_settings(),
        )

    def _package_settings(self) -> dict[str, Any]:
        if not self.package_index:
            return {}
        key = os.environ.get(self.package_key_env, "")
        if not key:
            raise web.HTTPError(
                503, f"The package proxy's key (${self.package_key_env}) is missing in the hub; "
                "an administrator must fix the deployment.",
            )  # fmt: skip
        return {
            "package_index": parse_endpoint(self.package_index, "package proxy"),
            "package_key": key.encode(),
        }

    def workspace_plan(self) -> WorkspacePlan:
        """The whole plan: the hub's variables (not its token: the pod reads that from a
        Secret) and the project's S3 endpoint and bucket included."""
        project, index = resolve_project(self.user, self.name)
        check_lifecycle(project, ProjectRules(parent=self))
        user = User(self.user.name, self.workspace_uid)
        s3 = self.project_s3.get(project.id)
        # the S3 credential itself comes from the project's Secret (pod.s3_credential_env)
        s3_env = public_env(s3["endpoint_url"], s3["bucket"]) if s3 else {}
        hub_env = {k: v for k, v in self.get_env().items() if k not in SECRET_ENV}
        return plan_workspace(
            project, user, self.plan_settings(), project_index=index,
            data=ProjectData(s3_env=tuple(sorted(s3_env.items()))),
            server_env=ServerEnv.of(hub_env),
        )  # fmt: skip

    def token_secret_name(self) -> str:
        return self.pod_name

    def pod_manifest_dict(self) -> dict[str, Any]:
        return self.manifests()[0]

    def manifests(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The pod and the Secret with its hub credentials (see pod.SECRET_ENV)."""
        plan = self.workspace_plan()
        labels = self._build_pod_labels(self._expand_all(self.extra_labels))
        annotations = self._build_common_annotations(self._expand_all(self.extra_annotations))
        # every variable is the plan's; the hub's token goes to the pod through its Secret
        env = {k: v for k, v in self.get_env().items() if k in SECRET_ENV}
        kube = self.kube_settings()
        pod = pod_manifest(
            plan,
            kube,
            name=self.pod_name,
            command=[
                *(self.cmd or ["jupyterhub-singleuser"]),
                *self.get_args(),
                *guard_server_args(self.image_python_prefix),
            ],
            port=self.port,
            env=env,
            labels=labels,
            annotations=annotations,
            secret_name=self.token_secret_name(),
        )
        return pod, token_secret(plan, kube, name=self.token_secret_name(), env=env)

    async def get_pod_manifest(self) -> Any:
        """The pod, after (re)creating the Secret it reads its hub credentials from.

        The Secret is created first so the container starts at once; once the pod exists,
        ``after_pod_created_hook`` makes the pod its owner, so it goes when the pod goes.
        """
        pod, secret = self.manifests()
        name = secret["metadata"]["name"]
        await exponential_backoff(
            partial(self._ensure_not_exists, "secret", name),
            f"Could not delete the old secret {name}",
            timeout=self.k8s_api_request_retry_timeout,
        )
        await exponential_backoff(
            partial(
                self._make_create_resource_request,
                "secret",
                to_v1(secret, "V1Secret", self.api.api_client),
            ),
            f"Could not create secret {name}",
            timeout=self.k8s_api_request_retry_timeout,
        )
        return to_v1(pod, "V1Pod", self.api.api_client)

    @default("poll_interval")
    def _default_poll_interval(self) -> float:
        # poll() reads KubeSpawner's pod reflector (a watch), not the API server: checking
        # every second costs nothing and reports a failed pod (a dead server, see
        # pod.separate_server) within the 2 s the hub must know it in.
        return 1

    @default("after_pod_created_hook")
    def _default_after_pod_created_hook(self) -> Any:
        return _adopt_token_secret

    async def _start(self) -> Any:
        # Resolve first so a non-member or invalid project fails before anything is created.
        plan = self.workspace_plan()
        self.namespace = namespace_for(plan.project, self.kube_settings())
        url = await super()._start()
        self.proof = new_proof(self.api_token, _pod_address(url))
        return url

    # The proof the service checks workspace calls against (cloisonne.core.workspace_proof).
    proof: WorkspaceProof | None = None

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.proof:
            state[STATE_KEY] = self.proof.to_state()
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.proof = WorkspaceProof.from_state(state)

    def clear_state(self) -> None:
        super().clear_state()
        self.proof = None


def _pod_address(url: Any) -> str:
    """The pod's IP, which its calls to the service come from ("" when KubeSpawner gave a
    name, e.g. with services enabled: then only the token is checked)."""
    host = (urlparse(url).hostname if isinstance(url, str) else url[0]) or ""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return ""
