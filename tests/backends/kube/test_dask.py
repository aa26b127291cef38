"""cloisonne.workspace.dask: a real LocalCluster on the local backend; on Kubernetes, the DaskCluster
resource and the Deployments the operator would create from it (with the operator's own
builders), validated strictly and checked against the project's policies."""

from __future__ import annotations

import json
from typing import Any

import celpy
import dask_kubernetes.operator
import pytest
from cloisonne.backends.kube.pod import DASK_TEMPLATE_ENV
from cloisonne.workspace import dask as cdask
from dask_kubernetes.operator.controller.controller import (
    build_scheduler_deployment_spec,
    build_scheduler_service_spec,
    build_worker_deployment_spec,
)
from distributed import Client, LocalCluster

from .conftest import validate_strict


def test_local_backend_runs_a_real_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert cdask.backend() == cdask.LOCAL
    with cdask.cluster(n_workers=1, threads_per_worker=1) as cluster:
        assert isinstance(cluster, LocalCluster)
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        with Client(cluster) as client:
            assert client.submit(sum, range(101)).result(timeout=30) == 5050


@pytest.fixture(scope="module")
def onco_template(spawn: Any) -> dict[str, Any]:
    pod = spawn("bob", "onco", lambda s: s.pod_manifest_dict())
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    return json.loads(env[DASK_TEMPLATE_ENV])


def test_only_dask_projects_get_a_template(spawn: Any) -> None:
    pod = spawn("alice", "cardio", lambda s: s.pod_manifest_dict())
    assert DASK_TEMPLATE_ENV not in {e["name"] for e in pod["spec"]["containers"][0]["env"]}
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    assert cdask.backend(env) == cdask.LOCAL  # no template: no Kubernetes rights either
    assert cdask.backend({**env, DASK_TEMPLATE_ENV: "{}"}) == cdask.KUBERNETES


def operator_objects(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """What the dask-kubernetes operator creates for this DaskCluster."""
    name, ns = spec["metadata"]["name"], spec["metadata"]["namespace"]
    labels, annotations = spec["metadata"]["labels"], spec["metadata"]["annotations"]
    scheduler = build_scheduler_deployment_spec(
        name, spec["spec"]["scheduler"]["spec"], annotations, labels
    )
    service = build_scheduler_service_spec(
        name, spec["spec"]["scheduler"]["service"], annotations, labels
    )
    worker = build_worker_deployment_spec(
        f"{name}-default", ns, name, "abc123", spec["spec"]["worker"]["spec"], annotations, labels
    )
    return [scheduler, service, worker]


def test_kube_cluster_resources(onco_template: dict[str, Any], manifests: list) -> None:
    spec = cdask.kube_cluster_spec(onco_template, name="dask-bob-1", n_workers=3)
    assert spec["kind"] == "DaskCluster"
    assert spec["metadata"]["namespace"] == "cloisonne-onco"
    assert spec["spec"]["worker"]["replicas"] == 3
    scheduler, service, worker = operator_objects(spec)
    for obj in (scheduler, service, worker):
        validate_strict({**obj, "metadata": {**obj["metadata"], "namespace": "cloisonne-onco"}})

    policies = {
        p["metadata"]["name"]: p["spec"]["podSelector"].get("matchLabels", {})
        for p in manifests
        if p["kind"] == "NetworkPolicy" and p["metadata"]["namespace"] == "cloisonne-onco"
    }
    for deployment in (scheduler, worker):
        pod = deployment["spec"]["template"]
        labels = pod["metadata"]["labels"]
        # The project's workspace policy selects Dask pods too.
        assert policies["workspace"].items() <= labels.items()
        spec_ = pod["spec"]
        (main,) = spec_["containers"]
        assert spec_["securityContext"]["runAsNonRoot"] is True
        assert main["securityContext"]["allowPrivilegeEscalation"] is False
        assert main["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert spec_["automountServiceAccountToken"] is False
        mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
        assert mounts["/data/cancer-registry-sample"]["readOnly"] is True
        assert mounts["/shared"]["subPath"] == "onco"
        # No home on Dask pods (the admission policy refuses it from anyone but the hub).
        assert not any(p.startswith("/home") for p in mounts)
        assert "cloisonne-home" not in json.dumps(spec_["volumes"])
        assert main["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert spec_["nodeSelector"]["nvidia.com/gpu.present"] == "true"
        assert main["image"].endswith("singleuser-gpu:0.1.0")
    # The operator may reach the scheduler (and only it) through its own policy.
    assert (
        policies["dask-operator"].items()
        <= scheduler["spec"]["template"]["metadata"]["labels"].items()
    )
    assert (
        not policies["dask-operator"].items()
        <= worker["spec"]["template"]["metadata"]["labels"].items()
    )
    # The operator's probes survive on the scheduler.
    assert "readinessProbe" in scheduler["spec"]["template"]["spec"]["containers"][0]
    worker_env = {e["name"] for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"DASK_WORKER_NAME", "DASK_SCHEDULER_ADDRESS", "CLOISONNE_PROJECT"} <= worker_env


def test_kube_cluster_hands_the_spec_to_kubecluster(
    onco_template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    class FakeKubeCluster:
        def __init__(self, **kwargs: Any) -> None:
            calls.append(kwargs)

    monkeypatch.setattr(dask_kubernetes.operator, "KubeCluster", FakeKubeCluster)
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", DASK_TEMPLATE_ENV: json.dumps(onco_template)}
    cdask.kube_cluster(n_workers=1, environ=env)
    (call,) = calls
    assert call["namespace"] == "cloisonne-onco"
    assert call["shutdown_on_close"] is True
    assert call["custom_cluster_spec"]["metadata"]["name"].startswith("dask-bob-")


def test_admission_policy_on_project_claims(
    onco_template: dict[str, Any], manifests: list, spawn: Any
) -> None:
    """Evaluate the chart's ValidatingAdmissionPolicy (CEL) on the pods that would reach it."""
    (policy,) = [m for m in manifests if m["kind"] == "ValidatingAdmissionPolicy"]
    env = celpy.Environment()
    programs = [env.program(env.compile(v["expression"])) for v in policy["spec"]["validations"]]

    def admitted(pod_spec: dict[str, Any], username: str) -> bool:
        activation = {
            "request": celpy.json_to_cel({"userInfo": {"username": username}}),
            "object": celpy.json_to_cel({"spec": pod_spec}),
        }
        return all(bool(program.evaluate(activation)) for program in programs)

    hub = "system:serviceaccount:cloisonne:hub"
    replicaset = "system:serviceaccount:kube-system:replicaset-controller"
    workspace = spawn("bob", "onco", lambda s: s.pod_manifest_dict())["spec"]
    assert admitted(workspace, hub)
    assert not admitted(workspace, replicaset)
    worker = cdask.kube_cluster_spec(onco_template, name="d", n_workers=1)["spec"]["worker"]
    assert admitted(worker["spec"], replicaset)
    # A crafted worker spec that mounts a colleague's home is refused.
    crafted = json.loads(json.dumps(worker["spec"]))
    crafted["volumes"].append(
        {"name": "h", "persistentVolumeClaim": {"claimName": "cloisonne-home"}}
    )
    crafted["containers"][0]["volumeMounts"].append(
        {"name": "h", "mountPath": "/steal", "subPath": "onco/dave"}
    )
    assert not admitted(crafted, replicaset)
    # A crafted worker spec that mounts the data read-write is refused too.
    writable = json.loads(json.dumps(worker["spec"]))
    for volume in writable["volumes"]:
        volume.get("persistentVolumeClaim", {}).pop("readOnly", None)
    assert not admitted(writable, replicaset)
    assert not admitted(writable, hub)
    # A crafted worker that reads a colleague's hub token (a Secret in the same namespace) is
    # refused, by env, envFrom or volume; the project's S3 credential may be read.
    token_ref = {"secretKeyRef": {"name": "jupyter-dave-onco", "key": "jupyterhub-api-token"}}
    for steal in (
        lambda spec: spec["containers"][0]["env"].append({"name": "T", "valueFrom": token_ref}),
        lambda spec: spec["containers"][0].setdefault("envFrom", []).append(
            {"secretRef": {"name": "jupyter-dave-onco"}}),
        lambda spec: spec["volumes"].append(
            {"name": "t", "secret": {"secretName": "jupyter-dave-onco"}}),
    ):  # fmt: skip
        crafted = json.loads(json.dumps(worker["spec"]))
        steal(crafted)
        assert not admitted(crafted, replicaset)
    s3_ref = {"secretKeyRef": {"name": "cloisonne-s3", "key": "aws-access-key-id"}}
    with_s3 = json.loads(json.dumps(worker["spec"]))
    with_s3["containers"][0]["env"].append({"name": "AWS_ACCESS_KEY_ID", "valueFrom": s3_ref})
    assert admitted(with_s3, replicaset)
    binding = [m for m in manifests if m["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert binding[0]["spec"]["validationActions"] == ["Deny"]
    assert policy["spec"]["matchConstraints"]["namespaceSelector"] == {
        "matchLabels": {"cloisonne.io/project-namespace": "tre"}
    }
