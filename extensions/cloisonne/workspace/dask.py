"""Dask for researchers: ``cloisonne.workspace.dask.cluster()`` works the same on both backends.

    from cloisonne.workspace.dask import cluster
    from dask.distributed import Client
    client = Client(cluster())

- local backend (a sandbox): a LocalCluster inside the sandbox. Its workers are processes of
  the workspace, so they share its mounts, limits (cgroups) and network rules; dask's CPU and
  memory defaults read the cgroup limits.
- Kubernetes: a DaskCluster in the project namespace, created by the dask-kubernetes operator
  from the pod template the spawner hands the workspace (CLOISONNE_DASK_TEMPLATE): the same
  image, data and shared mounts, limits, security context and project labels as the
  workspace, so the project's NetworkPolicy, Pod Security profile and quota apply to them.

The spec is built by the pure ``kube_cluster_spec`` and tested by the resources it renders.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from typing import Any

KUBERNETES = "kubernetes"
LOCAL = "local"
# The variable the Kubernetes pod compiler (backends/kube/pod.py) puts the worker template in.
DASK_TEMPLATE_ENV = "CLOISONNE_DASK_TEMPLATE"


def backend(environ: Mapping[str, str] = os.environ) -> str:
    """Kubernetes when the workspace runs in a pod with a Dask template, else local."""
    if environ.get("KUBERNETES_SERVICE_HOST") and environ.get(DASK_TEMPLATE_ENV):
        return KUBERNETES
    return LOCAL


def cluster(**kwargs: Any) -> Any:
    """A Dask cluster for this workspace; keyword arguments go to the backend's cluster."""
    if backend() == KUBERNETES:
        return kube_cluster(**kwargs)
    return local_cluster(**kwargs)


def local_cluster(**kwargs: Any) -> Any:
    """A LocalCluster confined to the workspace: loopback only, no dashboard port opened
    beyond loopback, spill files in /tmp (which the sandbox gives each workspace)."""
    from distributed import LocalCluster

    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:0",
        "local_directory": tempfile.gettempdir(),
        "processes": True,
    }
    options.update(kwargs)
    return LocalCluster(**options)


def _cluster_name(name: str | None, user: str) -> str:
    if name:
        return name
    slug = re.sub(r"[^a-z0-9-]", "-", user.lower()).strip("-")[:30] or "user"
    return f"dask-{slug}-{secrets.token_hex(3)}"


def _merge_container(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Our container (image, env, limits, mounts, security) with the operator's probes."""
    merged = copy.deepcopy(ours)
    for key in ("readinessProbe", "livenessProbe"):
        if theirs.get(key):
            merged[key] = theirs[key]
    return merged


def kube_cluster_spec(
    template: Mapping[str, Any],
    *,
    name: str,
    n_workers: int = 2,
    idle_timeout: int = 3600,
) -> dict[str, Any]:
    """The DaskCluster resource for ``template`` (see cloisonne.backends.kube.pod.dask_template).

    Starts from dask-kubernetes' own ``make_cluster_spec`` (so the structure follows the
    installed operator) and puts our pod specs in it; the labels go on the DaskCluster, from
    which the operator copies them to every scheduler and worker pod.
    """
    from dask_kubernetes.operator import make_cluster_spec

    spec = make_cluster_spec(
        name=name, image=template["image"], n_workers=n_workers, idle_timeout=idle_timeout
    )
    spec["metadata"] = {
        "name": name,
        "namespace": template["namespace"],
        "labels": dict(template["labels"]),
        "annotations": dict(template["annotations"]),
    }
    for role in ("scheduler", "worker"):
        theirs = spec["spec"][role]["spec"]["containers"][0]
        pod_spec = copy.deepcopy(template[role])
        pod_spec["containers"] = [_merge_container(pod_spec["containers"][0], theirs)]
        spec["spec"][role]["spec"] = pod_spec
    return spec


def kube_cluster(
    *,
    name: str | None = None,
    n_workers: int = 2,
    idle_timeout: int = 3600,
    environ: Mapping[str, str] = os.environ,
    **kwargs: Any,
) -> Any:
    """A dask-kubernetes KubeCluster in the project namespace, shut down with the client."""
    from dask_kubernetes.operator import KubeCluster

    template = json.loads(environ[DASK_TEMPLATE_ENV])
    cluster_name = _cluster_name(name, template["annotations"].get("cloisonne.io/user", ""))
    spec = kube_cluster_spec(
        template, name=cluster_name, n_workers=n_workers, idle_timeout=idle_timeout
    )
    options: dict[str, Any] = {"shutdown_on_close": True}
    options.update(kwargs)
    return KubeCluster(custom_cluster_spec=spec, namespace=template["namespace"], **options)
