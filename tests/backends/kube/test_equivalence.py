"""One plan, two backends: the pod gets exactly the plan's mounts, environment, limits and
allowlist, and so does the sandbox.

Three checks:
- plan -> pod, for every demo member and project (the plan built by ProjectKubeSpawner from
  the rendered chart's configuration);
- plan.allow -> the project's NetworkPolicy: every allowed endpoint has an egress rule on its
  port to the right peer, and there is no other egress but DNS and the project's own pods;
- sandbox vs pod from the *same* plan, through the local backend's pure compilers (bwrap
  argv, nftables ruleset, cgroup files), with the project's extract and S3 and the hub's and
  the backend's variables in the plan: the sandbox starts with exactly the plan's environment
  and mounts, the pod with the same plus only what a pod gets another way (credentials from
  Secrets, the GPU guard, the Dask pod template).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cloisonne.backends.kube.pod import SECRET_ENV, VOLUMES, KubeSettings, pod_manifest
from cloisonne.core.plan import (
    Endpoint,
    PlanSettings,
    ProjectData,
    ServerEnv,
    User,
    WorkspacePlan,
    plan_workspace,
)
from cloisonne.core.projects import parse_projects
from cloisonne.data.s3 import Credential, s3_endpoint, workspace_env
from cloisonne.data.workspace import data_mount

from .conftest import NAMESPACE

MEMBERS = [("alice", "cardio"), ("bob", "onco"), ("erin", "rare-disease")]
_UNITS = {"": 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}


def parse_cpu(q: str) -> float:
    return int(q[:-1]) / 1000 if q.endswith("m") else float(q)


def parse_memory(q: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([KMGT]i)?", q).groups()
    return int(number) * _UNITS[unit or ""]


def pod_view(pod: dict[str, Any]) -> dict[str, Any]:
    """What the pod gives the workspace, in the plan's terms."""
    (main,) = pod["spec"]["containers"]
    limits = main["resources"]["limits"]
    return {
        "mounts": {
            (m["mountPath"], m.get("subPath", ""), bool(m.get("readOnly")), m["name"])
            for m in main["volumeMounts"]
            if m["name"] != "tmp"
        },
        "env": {e["name"]: e.get("value", e.get("valueFrom")) for e in main["env"]},
        "limits": (
            parse_cpu(limits["cpu"]),
            parse_memory(limits["memory"]),
            int(pod["metadata"]["annotations"]["cloisonne.io/pids-limit"]),
            int(limits.get("nvidia.com/gpu", 0)),
        ),
        "allow": [
            (e["host"], e["port"])
            for e in json.loads(pod["metadata"]["annotations"]["cloisonne.io/allow"])
        ],
        "uid_gid": (
            pod["spec"]["securityContext"]["runAsUser"],
            pod["spec"]["securityContext"]["runAsGroup"],
        ),
        "workdir": main["workingDir"],
        "image": main["image"],
    }


def plan_view(plan: WorkspacePlan) -> dict[str, Any]:
    return {
        "mounts": {(m.target, m.sub_path, m.read_only, VOLUMES[m.volume]) for m in plan.mounts},
        "env": plan.env_dict(),
        "limits": (plan.limits.cpu, plan.limits.memory_bytes, plan.limits.pids, plan.limits.gpus),
        "allow": [(e.host, e.port) for e in plan.allow],
        "uid_gid": (plan.uid, plan.gid),
        "workdir": plan.workdir,
        "image": plan.image,
    }


@pytest.mark.parametrize(("user", "project"), MEMBERS)
def test_pod_gets_exactly_the_plan(spawn: Any, user: str, project: str) -> None:
    plan, pod = spawn(user, project, lambda s: (s.workspace_plan(), s.pod_manifest_dict()))
    got, want = pod_view(pod), plan_view(plan)
    assert got["mounts"] == want["mounts"]
    # The plan's variables (the hub's among them) are all there, unchanged; the others are
    # what a pod gets another way: the hub token (from the server's Secret), the S3 credential
    # (from the project's Secret: the plan holds only the endpoint and bucket),
    # NVIDIA_VISIBLE_DEVICES=void for pods without GPUs and the Dask pod template.
    assert {k: got["env"][k] for k in want["env"]} == want["env"]
    assert want["env"]["JUPYTERHUB_API_URL"] and want["env"]["JUPYTER_IMAGE"] == want["image"]
    extra = set(got["env"]) - set(want["env"])
    s3_keys = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert extra <= {*SECRET_ENV, *s3_keys, "NVIDIA_VISIBLE_DEVICES", "CLOISONNE_DASK_TEMPLATE"}
    assert (s3_keys <= extra) == ("CLOISONNE_S3_URL" in want["env"])
    for key in ("limits", "allow", "uid_gid", "workdir", "image"):
        assert got[key] == want[key], key


def endpoint_peers(values: dict[str, Any], project: dict[str, Any], e: Endpoint) -> list[dict]:
    """The NetworkPolicy peers that stand for endpoint ``e`` of ``project``."""
    release = {"kubernetes.io/metadata.name": NAMESPACE}

    def component(name: str) -> list[dict]:
        labels = {"app.kubernetes.io/instance": "tre", "cloisonne.io/component": name}
        return [
            {"namespaceSelector": {"matchLabels": release}, "podSelector": {"matchLabels": labels}}
        ]

    if e.host == f"hub.{NAMESPACE}.svc.cluster.local":
        return component("hub")
    if e.host == f"cloisonne-service.{NAMESPACE}.svc.cluster.local":
        return component("service")
    if e.host == f"cloisonne-packages.{NAMESPACE}.svc.cluster.local":
        return component("packages")
    for ep in [project.get("s3"), *project.get("egress", [])]:
        if ep and ep["host"] == e.host and ep["port"] == e.port:
            peers = [{"ipBlock": {"cidr": c}} for c in ep.get("cidrs", [])]
            if ep.get("namespaceSelector"):
                peer = {"namespaceSelector": {"matchLabels": ep["namespaceSelector"]}}
                if ep.get("podSelector"):
                    peer["podSelector"] = {"matchLabels": ep["podSelector"]}
                peers.append(peer)
            return peers
    raise AssertionError(f"endpoint {e} has no NetworkPolicy counterpart")


@pytest.mark.parametrize(("user", "project"), MEMBERS)
def test_network_policy_opens_exactly_the_plan_allowlist(
    spawn: Any, manifests: list, demo_values: dict, user: str, project: str
) -> None:
    plan, pod = spawn(user, project, lambda s: (s.workspace_plan(), s.pod_manifest_dict()))
    (policy,) = [
        m
        for m in manifests
        if m["kind"] == "NetworkPolicy"
        and m["metadata"]["namespace"] == f"cloisonne-{project}"
        and m["metadata"]["name"] == "workspace"
    ]
    # The policy selects this pod.
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    (values,) = [p for p in demo_values["projects"] if p["id"] == project]
    rules = list(policy["spec"]["egress"])
    for endpoint in plan.allow:
        wanted = {
            "to": endpoint_peers(demo_values, values, endpoint),
            "ports": [{"port": endpoint.port, "protocol": "TCP"}],
        }
        assert wanted in rules, endpoint
        rules.remove(wanted)
    # What remains: cluster DNS and the project's own pods (Dask), nothing else.
    dns, same_project = rules
    assert {p["port"] for p in dns["ports"]} == {53}
    assert dns["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kube-system"
    }
    assert same_project == {
        "to": [{"podSelector": {"matchLabels": {"cloisonne.io/project": project}}}]
    }


# -- sandbox vs pod, from the same plan ------------------------------------------------------

PROJECTS_YAML = {
    "projects": [
        {
            "id": "cardio",
            "members": ["alice"],
            "datasets": ["dcir-sample", "pmsi-sample"],
            "limits": {"cpu": 1.0, "memory": "2G", "pids": 512},
            "egress": ["198.51.100.7:443"],
        },
        {"id": "onco", "members": ["bob"], "datasets": ["cancer-registry-sample"], "gpus": 1},
    ]
}


def test_sandbox_and_pod_compile_the_same_plan(tmp_path: Path) -> None:
    bwrap = pytest.importorskip("cloisonne.backends.sandbox.bwrap")
    network = pytest.importorskip("cloisonne.backends.sandbox.network")
    cgroups = pytest.importorskip("cloisonne.backends.sandbox.cgroups")
    settings = PlanSettings(
        datasets_root="/srv/cloisonne/datasets",
        homes_root="/srv/cloisonne/homes",
        shared_root="/srv/cloisonne/shared",
        hub_api=Endpoint("10.243.0.1", 8081, "hub API"),
        extra_endpoints=(Endpoint("10.243.0.1", 10101, "service"),),
    )
    for index, spec in enumerate(parse_projects(PROJECTS_YAML), start=1):
        pid = spec.project.id
        data = ProjectData(
            extract=data_mount(pid, "/srv/cloisonne/project-data"),
            s3=s3_endpoint("10.243.0.1", 18330),
            s3_env=tuple(sorted(workspace_env(
                Credential(pid, f"cloisonne-{pid}", "AK", "SK"), "http://10.243.0.1:18330"
            ).items())),
        )  # fmt: skip
        server_env = ServerEnv.of(
            {"JUPYTERHUB_API_URL": "http://10.243.0.1:8081/hub/api", "HOME": "/root"},
            {"PATH": "/opt/venv/bin:/usr/bin:/bin"},
        )
        plan = plan_workspace(
            spec.project, User(spec.members[0], 1000), settings, project_index=index,
            data=data, server_env=server_env,
        )  # fmt: skip
        plan_env = plan.env_dict()
        assert plan_env["HOME"] == f"/home/{spec.members[0]}"  # the plan wins over the hub
        assert plan_env["PATH"] == "/opt/venv/bin:/usr/bin:/bin"  # the backend wins over both
        assert plan_env["JUPYTERHUB_API_URL"] and plan_env["AWS_ACCESS_KEY_ID"] == "AK"
        pod = pod_view(pod_manifest(plan, KubeSettings(), name="jupyter-x"))

        # Mounts and environment from the bubblewrap command line.
        argv = bwrap.bwrap_argv(plan, bwrap.SandboxRuntime(), ["jupyterhub-singleuser"])
        targets = {m.target: m for m in plan.mounts}
        roots = {
            "dataset": settings.datasets_root,
            "home": settings.homes_root,
            "shared": settings.shared_root,
        }
        binds, env = set(), {}
        for i, arg in enumerate(argv):
            if arg in ("--bind", "--ro-bind") and argv[i + 2] in targets:
                mount = targets[argv[i + 2]]
                # The sandbox's source and the pod's subPath are the same place in the volume.
                assert argv[i + 1] == (
                    mount.source
                    if mount.target.startswith("/data/extract") or mount.target == "/data"
                    else f"{roots[mount.volume]}/{mount.sub_path}"
                )
                binds.add((argv[i + 2], mount.sub_path, arg == "--ro-bind", VOLUMES[mount.volume]))
            if arg == "--setenv":
                env[argv[i + 1]] = argv[i + 2]
        assert binds == pod["mounts"]
        assert "/data/extract" in {b[0] for b in binds}  # the extract beside the datasets
        assert env == plan_env  # the sandbox: exactly the plan's variables
        assert env == {k: pod["env"][k] for k in env}  # the pod: the same values...
        pod_only = set(pod["env"]) - set(env)  # ...plus only what a pod gets another way
        assert pod_only <= {"NVIDIA_VISIBLE_DEVICES"}, pod_only
        assert argv[argv.index("--chdir") + 1] == pod["workdir"]

        # Limits from the cgroup files the sandbox writes (a v1 layout in a temporary dir).
        hierarchies = {c: str(tmp_path / f"{index}-{c}") for c in ("memory", "cpu", "pids")}
        cgroup = cgroups.SandboxCgroup(cgroups.CgroupLayout(1, hierarchies), "x")
        cgroup.create(plan.limits)
        base = {c: Path(r, "cloisonne", "x") for c, r in hierarchies.items()}
        cpu = int((base["cpu"] / "cpu.cfs_quota_us").read_text()) / int(
            (base["cpu"] / "cpu.cfs_period_us").read_text()
        )
        memory = int((base["memory"] / "memory.limit_in_bytes").read_text())
        pids = int((base["pids"] / "pids.max").read_text())
        assert (cpu, memory, pids) == pod["limits"][:3]

        # Allowlist from the nftables elements.
        net = network.SiteNetwork().slot(index)
        elements = network.server_elements(net, plan.allow, 8888)["allowed_in"]
        allowed = [re.match(r'"\S+" \. (\S+) \. (\d+) ', e).groups() for e in elements]
        assert [(h, int(p)) for h, p in allowed] == pod["allow"]
