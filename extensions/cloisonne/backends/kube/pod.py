"""Compile a WorkspacePlan into Kubernetes objects (pure: no API calls, no I/O).

The sandbox backend turns the plan into bubblewrap binds, a network namespace, nftables and
cgroups; this module turns the *same* plan into a pod in the project's namespace:

- mounts: the plan names each mount's ``volume`` (dataset, home, shared) and ``sub_path``; on
  Kubernetes each volume class is a PersistentVolumeClaim in the project namespace (created by
  the Helm chart) and the sub_path selects the dataset, the user's home or the project folder.
  Datasets are mounted read-only at the volume *and* at the mount, so a misconfigured mount
  cannot write through.
- limits: CPU and memory limits (memory request = limit so the node never overcommits a
  workspace's memory), GPUs as an extended-resource limit with the project's node placement.
- network: the pod carries the plan's labels; the chart's NetworkPolicies select them. The
  plan's allowlist is recorded in an annotation so an auditor (and the tests) can compare it
  with the policies.
- security: uid 1000 (jovyan, as in the Jupyter docker-stacks), the project's gid, the
  restricted Pod Security profile, a read-only root filesystem (docker-stacks makes the Python
  prefix group-writable; a writable prefix would let a user patch the workspace guard), and no
  service-account token unless the project uses Dask.

The Dask worker and scheduler pods are built by the same functions (see ``dask_pod_spec``), so
they carry the same labels and the same NetworkPolicy applies to them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...core.plan import SHARED_DIR, Mount, WorkspacePlan
from ...workspace.dask import DASK_TEMPLATE_ENV

# Volume names inside the pod, one per storage class of the plan.
VOLUMES = {"dataset": "data", "home": "home", "shared": "shared"}
# Mounts the plan may carry for the local backend only: on Kubernetes the image provides them.
IMAGE_PROVIDED = {"system"}
TMP_VOLUME = "tmp"
# Hub credentials of the server: passed through a Secret, never written into the pod spec,
# because anything with read access to pods in the namespace (the Dask service account of a
# colleague's workspace) could otherwise read them and act as this user's server.
SECRET_ENV = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")
# The project's S3 credential: variable -> key in the project's S3 Secret (KubeSettings.s3_secrets)
S3_SECRET_KEYS = {
    "AWS_ACCESS_KEY_ID": "aws-access-key-id",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-access-key",
}
DASK_SCHEDULER_PORT, DASK_DASHBOARD_PORT, DASK_WORKER_DASHBOARD_PORT = 8786, 8787, 8788
CONTAINER = "notebook"

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class Toleration:
    key: str
    operator: str = "Exists"
    value: str = ""
    effect: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"key": self.key, "operator": self.operator}
        if self.value:
            out["value"] = self.value
        if self.effect:
            out["effect"] = self.effect
        return out


@dataclass(frozen=True)
class Placement:
    """Where a project's pods may run and what they may do beyond the plan.

    ``node_selector`` and ``tolerations`` apply to every pod of the project (a project may have
    dedicated nodes); ``dask`` gives its workspaces a service-account token limited to creating
    Dask clusters in the project namespace.
    """

    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    dask: bool = False


@dataclass(frozen=True)
class KubeSettings:
    """Site settings for the Kubernetes backend (filled from ProjectKubeSpawner's traitlets)."""

    namespace_template: str = "cloisonne-{project}"
    dataset_claim: str = "cloisonne-data"
    home_claim: str = "cloisonne-home"
    shared_claim: str = "cloisonne-shared"
    uid: int = 1000
    cpu_request_ratio: float = 0.25
    gpu_resource: str = "nvidia.com/gpu"
    gpu_node_selector: tuple[tuple[str, str], ...] = (("nvidia.com/gpu.present", "true"),)
    gpu_tolerations: tuple[Toleration, ...] = (
        Toleration("nvidia.com/gpu", "Exists", "", "NoSchedule"),
    )
    placements: Mapping[str, Placement] = field(default_factory=dict)
    dask_service_account: str = "cloisonne-dask"
    image_pull_policy: str = "IfNotPresent"
    image_pull_secrets: tuple[str, ...] = ()
    tmp_size: str = "1Gi"
    priority_class: str = ""
    # project id -> name of the Secret in its namespace holding its S3 credential
    s3_secrets: Mapping[str, str] = field(default_factory=dict)

    def placement(self, project: str) -> Placement:
        return self.placements.get(project, Placement())


def namespace_for(project: str, kube: KubeSettings) -> str:
    namespace = kube.namespace_template.format(project=project)
    if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        raise ValueError(f"namespace {namespace!r} for project {project!r} is not a DNS label")
    return namespace


def label_value(text: str) -> str:
    """``text`` if it is a valid label value, else a readable prefix plus a short hash.

    User names may end in '.', '-' or '_' or be 64 characters long, which labels refuse; the
    hash keeps distinct names distinct. The raw name is kept in an annotation.
    """
    if len(text) <= 63 and _LABEL_VALUE.match(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    prefix = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:50].strip("-_.")
    return f"{prefix}-{digest}" if prefix else digest


def cpu_quantity(cpu: float) -> str:
    millis = max(1, round(cpu * 1000))
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def memory_quantity(n: int) -> str:
    for suffix, size in (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)


def resources(plan: WorkspacePlan, kube: KubeSettings) -> dict[str, dict[str, str]]:
    """Limits straight from the plan; requests so the scheduler places pods where they fit.

    Memory request = limit: a workspace killed because its node overcommitted memory loses
    unsaved work. CPU is compressible, so it is requested at a fraction of the limit.
    GPUs are an extended resource: Kubernetes requires request = limit, set by the limit alone.
    """
    limits = {
        "cpu": cpu_quantity(plan.limits.cpu),
        "memory": memory_quantity(plan.limits.memory_bytes),
    }
    if plan.limits.gpus:
        limits[kube.gpu_resource] = str(plan.limits.gpus)
    requests = {
        "cpu": cpu_quantity(max(0.01, plan.limits.cpu * kube.cpu_request_ratio)),
        "memory": limits["memory"],
    }
    return {"limits": limits, "requests": requests}


def volume_mounts(mounts: Sequence[Mount]) -> list[dict[str, Any]]:
    out = []
    for mount in mounts:
        if mount.volume in IMAGE_PROVIDED:
            continue
        if mount.volume not in VOLUMES:
            raise ValueError(f"no Kubernetes volume for mount {mount.target} ({mount.volume})")
        item: dict[str, Any] = {"name": VOLUMES[mount.volume], "mountPath": mount.target}
        if mount.sub_path:
            item["subPath"] = mount.sub_path
        if mount.read_only:
            item["readOnly"] = True
        out.append(item)
    out.append({"name": TMP_VOLUME, "mountPath": "/tmp"})
    return out


def volumes(mounts: Sequence[Mount], kube: KubeSettings) -> list[dict[str, Any]]:
    claims = {"dataset": kube.dataset_claim, "home": kube.home_claim, "shared": kube.shared_claim}
    used = sorted({m.volume for m in mounts if m.volume in VOLUMES}, key=list(VOLUMES).index)
    out: list[dict[str, Any]] = []
    for kind in used:
        claim: dict[str, Any] = {"claimName": claims[kind]}
        if kind == "dataset":
            claim["readOnly"] = True
        out.append({"name": VOLUMES[kind], "persistentVolumeClaim": claim})
    out.append({"name": TMP_VOLUME, "emptyDir": {"sizeLimit": kube.tmp_size}})
    return out


def pod_security_context(plan: WorkspacePlan, kube: KubeSettings) -> dict[str, Any]:
    # fsGroup = the project's gid: files on the shared volume stay group-owned by the project;
    # OnRootMismatch avoids a recursive chown of large volumes at every start.
    return {
        "runAsNonRoot": True,
        "runAsUser": kube.uid,
        "runAsGroup": plan.gid,
        "fsGroup": plan.gid,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def secret_key(name: str) -> str:
    return name.lower().replace("_", "-")


def env_list(
    plan: WorkspacePlan, base: Mapping[str, str] = {}, *, secret_name: str = ""
) -> list[dict[str, Any]]:
    """The hub's variables (API token, URLs) overlaid by the plan's, which always win.

    With ``secret_name``, the variables in SECRET_ENV come from that Secret (see
    ``token_secret``) instead of appearing in the pod spec.
    A pod without a GPU limit gets ``NVIDIA_VISIBLE_DEVICES=void``: CUDA images set it to
    ``all``, and on a node whose default runtime is NVIDIA's that would expose every GPU.
    """
    env = dict(base)
    if not plan.limits.gpus:
        env["NVIDIA_VISIBLE_DEVICES"] = "void"
    env.update(plan.env_dict())
    out: list[dict[str, Any]] = []
    for name, value in sorted(env.items()):
        if secret_name and name in SECRET_ENV and name not in plan.env_dict():
            ref = {"name": secret_name, "key": secret_key(name)}
            out.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
        else:
            out.append({"name": name, "value": value})
    return out


def s3_credential_env(plan: WorkspacePlan, kube: KubeSettings) -> list[dict[str, Any]]:
    """The project's S3 credential, read from the Secret the site keeps in the project's
    namespace: a pod can only reference Secrets of its own namespace, so no workspace can ask
    for another project's, and the keys never appear in the pod spec or the hub."""
    secret = kube.s3_secrets.get(plan.project)
    if not secret:
        return []
    return [
        {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for name, key in S3_SECRET_KEYS.items()
    ]


def token_secret(
    plan: WorkspacePlan, kube: KubeSettings, *, name: str, env: Mapping[str, str]
) -> dict[str, Any]:
    """The Secret holding the server's hub credentials, read by the pod's env (secret_name)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace_for(plan.project, kube),
            "labels": plan_labels(plan),
        },
        "type": "Opaque",
        "stringData": {secret_key(k): env[k] for k in SECRET_ENV if k in env},
    }


def plan_labels(plan: WorkspacePlan) -> dict[str, str]:
    return {k: label_value(v) for k, v in plan.labels}


def scheduling(plan: WorkspacePlan, kube: KubeSettings) -> dict[str, Any]:
    placement = kube.placement(plan.project)
    selector = dict(placement.node_selector)
    tolerations = [t.to_dict() for t in placement.tolerations]
    if plan.limits.gpus:
        selector.update(dict(kube.gpu_node_selector))
        tolerations += [t.to_dict() for t in kube.gpu_tolerations if t.to_dict() not in tolerations]
    out: dict[str, Any] = {}
    if selector:
        out["nodeSelector"] = selector
    if tolerations:
        out["tolerations"] = tolerations
    if kube.priority_class:
        out["priorityClassName"] = kube.priority_class
    return out


def pod_spec(
    plan: WorkspacePlan,
    kube: KubeSettings,
    *,
    command: Sequence[str],
    env: Mapping[str, str] = {},
    mounts: Sequence[Mount] | None = None,
    ports: Sequence[tuple[str, int]] = (),
    container: str = CONTAINER,
    service_account: bool | None = None,
    workdir: str = "",
    secret_name: str = "",
) -> dict[str, Any]:
    """The pod spec shared by workspaces and Dask pods."""
    mounts = plan.mounts if mounts is None else mounts
    dask = kube.placement(plan.project).dask
    token = dask if service_account is None else service_account
    main: dict[str, Any] = {
        "name": container,
        "image": plan.image,
        "imagePullPolicy": kube.image_pull_policy,
        "command": list(command),
        "workingDir": workdir or plan.workdir,
        "env": env_list(plan, env, secret_name=secret_name) + s3_credential_env(plan, kube),
        "resources": resources(plan, kube),
        "securityContext": CONTAINER_SECURITY_CONTEXT,
        "volumeMounts": volume_mounts(mounts),
    }
    if ports:
        main["ports"] = [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports]
    spec: dict[str, Any] = {
        # The token lets a workspace call the Kubernetes API; only Dask needs that, through a
        # Role limited to Dask clusters in the project namespace.
        "automountServiceAccountToken": token,
        # Service links inject every Service of the namespace as environment variables.
        "enableServiceLinks": False,
        "restartPolicy": "OnFailure",
        "securityContext": pod_security_context(plan, kube),
        "containers": [main],
        "volumes": volumes(mounts, kube),
        **scheduling(plan, kube),
    }
    if token:
        spec["serviceAccountName"] = kube.dask_service_account
    if kube.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": n} for n in kube.image_pull_secrets]
    return spec


def plan_annotations(plan: WorkspacePlan) -> dict[str, str]:
    return {
        "cloisonne.io/user": plan.user,
        "cloisonne.io/project": plan.project,
        # Kubernetes has no per-pod pids limit in the pod spec: the kubelet's podPidsLimit
        # enforces it node-wide (see docs/deploy-kubernetes.md); recorded here for audit.
        "cloisonne.io/pids-limit": str(plan.limits.pids),
        "cloisonne.io/allow": json.dumps(
            [{"host": e.host, "port": e.port, "purpose": e.purpose} for e in plan.allow]
        ),
    }


def pod_manifest(
    plan: WorkspacePlan,
    kube: KubeSettings,
    *,
    name: str,
    command: Sequence[str] = ("jupyterhub-singleuser",),
    port: int = 8888,
    env: Mapping[str, str] = {},
    labels: Mapping[str, str] = {},
    annotations: Mapping[str, str] = {},
    secret_name: str = "",
) -> dict[str, Any]:
    """The workspace pod for ``plan``: a plain dict, as ``kubectl apply`` would take it.

    ``env``, ``labels`` and ``annotations`` come from the hub (API token, KubeSpawner's
    bookkeeping labels); the plan's own values are applied last so nothing overrides them.
    With ``secret_name`` the hub credentials are read from ``token_secret(...)`` of that name.
    """
    if kube.placement(plan.project).dask:
        # cloisonne.workspace.dask.cluster() reads it to ask the operator for pods like this one.
        env = {**env, DASK_TEMPLATE_ENV: json.dumps(dask_template(plan, kube), sort_keys=True)}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace_for(plan.project, kube),
            "labels": {**labels, **plan_labels(plan)},
            "annotations": {**annotations, **plan_annotations(plan)},
        },
        "spec": separate_server(
            pod_spec(
                plan,
                kube,
                command=command,
                env=env,
                ports=[("notebook-port", port)],
                secret_name=secret_name,
            )
        ),
    }


def separate_server(spec: dict[str, Any]) -> dict[str, Any]:
    """What keeps a workspace's server out of its user code's reach in the pod (issue 11.1).

    The container's ``command`` replaces the image's entrypoint, so the server is PID 1 of the
    container's PID namespace: the kernel never delivers SIGKILL/SIGSTOP sent from inside to it,
    and when it exits every process of the container dies with it, so nothing is left to bind
    its port. ``shareProcessNamespace: false`` keeps it so (a shared namespace would make the
    pause container PID 1 and the server an ordinary, killable process). ``restartPolicy:
    Never``: a dead server fails the pod, which KubeSpawner reports stopped, instead of the
    kubelet quietly starting a second server under the first one's route; the liveness probe
    on the server's port fails the pod the same way if the server stops answering.
    """
    probe = {"tcpSocket": {"port": "notebook-port"}, "periodSeconds": 1, "failureThreshold": 2}
    (main,) = spec["containers"]
    containers = [{**main, "livenessProbe": {**probe, "initialDelaySeconds": 5},
                   "readinessProbe": probe}]  # fmt: skip
    return {**spec, "shareProcessNamespace": False, "restartPolicy": "Never",
            "containers": containers}  # fmt: skip


def dask_pod_spec(
    plan: WorkspacePlan,
    kube: KubeSettings,
    *,
    role: str,
    command: Sequence[str],
    ports: Sequence[tuple[str, int]] = (),
) -> dict[str, Any]:
    """A Dask scheduler or worker pod spec with the workspace's data mounts and limits.

    Workers get the project's data (read-only) and shared folder, not the user's home: the
    cluster spec is written by the user, so nothing in it may be trusted to pick whose home
    to mount; results go to /shared or back to the client.
    """
    mounts = [m for m in plan.mounts if m.volume in {"dataset", "shared"}]
    return pod_spec(
        plan,
        kube,
        command=command,
        mounts=mounts,
        ports=ports,
        container=role,
        service_account=False,
        workdir=SHARED_DIR,
    )


def dask_template(plan: WorkspacePlan, kube: KubeSettings) -> dict[str, Any]:
    """What a workspace needs to request Dask pods like itself from the dask-kubernetes
    operator: namespace, labels (the project's, so its NetworkPolicy applies) and the
    scheduler and worker pod specs. ``cloisonne.workspace.dask`` turns it into a DaskCluster.

    It is handed to the workspace in an environment variable, so a user can change it: it is
    a convenience, not a boundary. The boundary is the namespace: Pod Security "restricted",
    NetworkPolicies on the project label, the quota. What a crafted spec could still do inside
    the project (mount another member's home sub-path) is discussed in
    docs/deploy-kubernetes.md.
    """
    labels = {**plan_labels(plan), "cloisonne.io/component": "dask"}
    # Dask pods have no home: HOME on the (memory-backed) /tmp.
    dask_plan = _with_env(plan, HOME="/tmp")
    return {
        "namespace": namespace_for(plan.project, kube),
        "labels": labels,
        "annotations": {"cloisonne.io/user": plan.user, "cloisonne.io/project": plan.project},
        "image": plan.image,
        "scheduler": dask_pod_spec(
            dask_plan,
            kube,
            role="scheduler",
            command=["dask", "scheduler", "--host", "0.0.0.0"],
            ports=[("tcp-comm", DASK_SCHEDULER_PORT), ("http-dashboard", DASK_DASHBOARD_PORT)],
        ),
        "worker": dask_pod_spec(
            dask_plan,
            kube,
            role="worker",
            command=[
                "dask",
                "worker",
                "--name",
                "$(DASK_WORKER_NAME)",
                "--dashboard",
                "--dashboard-address",
                str(DASK_WORKER_DASHBOARD_PORT),
            ],  # fmt: skip
            ports=[("http-dashboard", DASK_WORKER_DASHBOARD_PORT)],
        ),
    }


def _with_env(plan: WorkspacePlan, **overrides: str) -> WorkspacePlan:
    env = {**plan.env_dict(), **overrides}
    return dataclasses.replace(plan, env=tuple(sorted(env.items())))
