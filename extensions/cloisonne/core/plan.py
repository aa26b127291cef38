"""WorkspacePlan: everything a workspace gets, as a pure function of (project, user, settings,
the project's data, the server's environment).

Both backends compile the same plan: the sandbox spawner into bubblewrap + netns + nftables +
cgroups, the Kubernetes spawner into a pod, PVC mounts and NetworkPolicy labels. The project's
extract and S3 access (``ProjectData``) and the hub's and the backend's variables
(``ServerEnv``) are inputs of the plan, not patches after it, so the environment and mounts a
workspace starts with are the plan's. Nothing here touches the host, so the plan is unit-tested
on its own and the two backends can be checked for equivalence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from .packages import index_url, workspace_token
from .projects import Limits, Project

# Where things appear inside every workspace, whatever the backend.
DATA_DIR = "/data"
SHARED_DIR = "/shared"
HOME_ROOT = "/home"
# Where the extract goes when the project also lists datasets, which take /data/<name>: a
# read-only bind at /data would leave no place to create their mount points.
EXTRACT_BESIDE_DATASETS = f"{DATA_DIR}/extract"
# Variables KubeSpawner sets from its ``image`` trait; the plan may have chosen the GPU image.
IMAGE_ENV = ("JUPYTER_IMAGE", "JUPYTER_IMAGE_SPEC")
# where `pip install` puts packages in a workspace (a pip --prefix), under the user's home of
# the project
USER_PACKAGES = ".cloisonne/python"


@dataclass(frozen=True)
class Mount:
    """A bind of ``source`` (a host path, or a volume name on Kubernetes) at ``target``.

    ``volume`` names the storage class of the source so that the Kubernetes backend can map it
    to a PVC: "dataset", "home", "shared" (each with ``sub_path`` inside it) or "system".
    """

    source: str
    target: str
    read_only: bool
    volume: str
    sub_path: str = ""


@dataclass(frozen=True)
class Endpoint:
    """A TCP endpoint the workspace may open connections to; everything else is denied."""

    host: str
    port: int
    purpose: str


@dataclass(frozen=True)
class User:
    name: str
    uid: int


@dataclass(frozen=True)
class PlanSettings:
    """Site settings the plan depends on (filled from the spawner's traitlets)."""

    datasets_root: str
    homes_root: str
    shared_root: str
    hub_api: Endpoint
    project_gid_base: int = 300000
    extra_endpoints: tuple[Endpoint, ...] = ()
    image: str = "cloisonne/singleuser:latest"
    # Image for projects that have GPUs (CUDA libraries are gigabytes that CPU projects do not
    # need); empty means every project uses ``image``.
    gpu_image: str = ""
    extra_env: tuple[tuple[str, str], ...] = ()
    # The package proxy (cloisonne.packages) and the key its per-workspace credentials are
    # made with; None: no proxy, pip has no index.
    package_index: Endpoint | None = None
    package_key: bytes = b""


@dataclass(frozen=True)
class ProjectData:
    """The project's research data for this workspace: its provisioned extract (read-only),
    the S3 endpoint to allow and the S3 variables (found by the hub at spawn time)."""

    extract: Mount | None = None
    s3: Endpoint | None = None
    s3_env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ServerEnv:
    """The variables the server gets besides the plan's own.

    ``hub``: the hub's (JUPYTERHUB_* URLs, activity interval, service URL); the plan's win on a
    clash. ``backend``: what the backend needs to run the server (PATH and the Python paths of
    the environment bound into a sandbox); they win over the plan's. Secrets the backend
    delivers another way (a pod's token Secret) are left out of both.
    """

    hub: tuple[tuple[str, str], ...] = ()
    backend: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, hub: Mapping[str, str] = {}, backend: Mapping[str, str] = {}) -> ServerEnv:
        return cls(tuple(sorted(hub.items())), tuple(sorted(backend.items())))


@dataclass(frozen=True)
class WorkspacePlan:
    project: str
    user: str
    uid: int
    gid: int
    home: str
    workdir: str
    umask: int
    mounts: tuple[Mount, ...]
    env: tuple[tuple[str, str], ...]
    limits: Limits
    allow: tuple[Endpoint, ...]
    image: str
    labels: tuple[tuple[str, str], ...] = field(default=())

    def env_dict(self) -> dict[str, str]:
        return dict(self.env)


def package_env(
    index: Endpoint, key: bytes, project: str, user: User, where: str
) -> dict[str, str]:
    """pip's settings in a workspace: the project's index on the proxy, with the workspace's
    credential, and installs into a prefix under ``where`` (the user's home for this project,
    or the project's shared folder when the project shares one environment) that only the
    kernels put on their path (never the server: user-written code must not load there). A
    prefix, not --target: pip then counts what the platform's environment already has as
    installed, so dependencies it provides are neither fetched again nor need allowing."""
    token = workspace_token(key, project, user.name)
    return {
        "PIP_INDEX_URL": index_url(index.host, index.port, project, user.name, token),
        "PIP_TRUSTED_HOST": index.host,  # plain HTTP on the host-only address
        "PIP_CONFIG_FILE": "/dev/null",  # the host's pip.conf (bound with /etc) does not apply
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "PIP_PREFIX": f"{where}/{USER_PACKAGES}",
        "CLOISONNE_USER_PREFIX": f"{where}/{USER_PACKAGES}",
    }


def project_gid(project_index: int, settings: PlanSettings) -> int:
    """The gid that owns a project's shared folder; index is stable (the hub group's id)."""
    return settings.project_gid_base + project_index


def plan_workspace(
    project: Project,
    user: User,
    settings: PlanSettings,
    *,
    project_index: int,
    data: ProjectData = ProjectData(),
    server_env: ServerEnv = ServerEnv(),
) -> WorkspacePlan:
    """Compute the workspace for ``user`` in ``project``: every mount, variable and endpoint
    it starts with.

    The home is per (project, user): a researcher in two projects gets two homes, so nothing
    written in one project's workspace can be read from the other's.
    """
    plan = _base_plan(project, user, settings, project_index=project_index)
    plan = with_project_data(plan, extract=data.extract, s3=data.s3, s3_env=dict(data.s3_env))
    env = {**dict(server_env.hub), **plan.env_dict(), **dict(server_env.backend)}
    for name in IMAGE_ENV:
        if name in env:
            env[name] = plan.image
    return dataclasses.replace(plan, env=tuple(sorted(env.items())))


def _base_plan(
    project: Project, user: User, settings: PlanSettings, *, project_index: int
) -> WorkspacePlan:
    home = f"{HOME_ROOT}/{user.name}"
    gid = project_gid(project_index, settings)
    mounts = [
        Mount(
            source=f"{settings.datasets_root}/{name}",
            target=f"{DATA_DIR}/{name}",
            read_only=True,
            volume="dataset",
            sub_path=name,
        )
        for name in project.datasets
    ]
    mounts.append(
        Mount(
            source=f"{settings.homes_root}/{project.id}/{user.name}",
            target=home,
            read_only=False,
            volume="home",
            sub_path=f"{project.id}/{user.name}",
        )
    )
    mounts.append(
        Mount(
            source=f"{settings.shared_root}/{project.id}",
            target=SHARED_DIR,
            read_only=False,
            volume="shared",
            sub_path=project.id,
        )
    )
    env = {
        "HOME": home,
        "USER": user.name,
        "LOGNAME": user.name,
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
        "CLOISONNE_PROJECT": project.id,
        "CLOISONNE_USER": user.name,
        "CLOISONNE_DATA_DIR": DATA_DIR,
        "CLOISONNE_SHARED_DIR": SHARED_DIR,
        # Jupyter looks for config in the user's home first unless told otherwise; the
        # spawner pins these so user-level config cannot switch the workspace guard off.
        "JUPYTER_PREFER_ENV_PATH": "1",
        "PYTHONNOUSERSITE": "1",
        # JupyterLab saves layouts and user settings every few seconds; by default under the
        # config dir, which is pinned read-only (500 "Read-only file system" forever). The
        # user's own home keeps them across restarts; the plugins locked in the read-only
        # page config stay locked, user settings cannot unlock them.
        "JUPYTERLAB_WORKSPACES_DIR": f"{home}/.jupyter/lab/workspaces",
        "JUPYTERLAB_SETTINGS_DIR": f"{home}/.jupyter/lab/user-settings",
    }
    if project.limits.gpus:
        env["CLOISONNE_GPUS"] = str(project.limits.gpus)
    env.update(dict(settings.extra_env))
    allow = [settings.hub_api, *settings.extra_endpoints]
    if settings.package_index is not None:
        where = SHARED_DIR if project.package_env == "shared" else home
        env.update(package_env(settings.package_index, settings.package_key, project.id, user,
                               where))  # fmt: skip
        allow.append(settings.package_index)
    allow += [Endpoint(e.host, e.port, "project egress") for e in project.egress]
    return WorkspacePlan(
        project=project.id,
        user=user.name,
        uid=user.uid,
        gid=gid,
        home=home,
        workdir=home,
        umask=0o002,
        mounts=tuple(mounts),
        env=tuple(sorted(env.items())),
        limits=project.limits,
        allow=tuple(allow),
        image=settings.gpu_image if project.limits.gpus and settings.gpu_image else settings.image,
        labels=(
            ("app.kubernetes.io/part-of", "cloisonne"),
            ("cloisonne.io/component", "workspace"),
            ("cloisonne.io/project", project.id),
            ("cloisonne.io/user", user.name),
        ),
    )


def extract_target(plan: WorkspacePlan) -> str:
    """/data, unless the plan already mounts datasets under it (then /data/extract)."""
    taken = {m.target for m in plan.mounts if m.target.startswith(DATA_DIR + "/")}
    if not taken:
        return DATA_DIR
    if EXTRACT_BESIDE_DATASETS in taken:
        raise ValueError(
            f"project {plan.project!r} has a dataset named 'extract', which is where its "
            "provisioned extract goes: rename the dataset"
        )
    return EXTRACT_BESIDE_DATASETS


def with_project_data(
    plan: WorkspacePlan,
    *,
    extract: Mount | None = None,
    s3: Endpoint | None = None,
    s3_env: Mapping[str, str] | None = None,
) -> WorkspacePlan:
    """The plan plus the project's extract (read-only), its S3 port and S3 variables.

    ``CLOISONNE_DATA_DIR`` names where the extract is, so notebooks find it either way.
    """
    mounts, env, allow = list(plan.mounts), plan.env_dict(), list(plan.allow)
    if extract is not None:
        if not extract.read_only:
            raise ValueError(f"the extract {extract.source} must be mounted read-only")
        extract = dataclasses.replace(extract, target=extract_target(plan))
        mounts.append(extract)
        env["CLOISONNE_DATA_DIR"] = extract.target
    if s3 is not None:
        allow.append(s3)
    env.update(s3_env or {})
    return dataclasses.replace(
        plan, mounts=tuple(mounts), env=tuple(sorted(env.items())), allow=tuple(allow)
    )
