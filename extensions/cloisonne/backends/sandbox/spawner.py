"""SandboxSpawner: the single-machine backend.

Compiles the WorkspacePlan into a bubblewrap sandbox inside its own network namespace, with an
nftables table that lets it reach only the plan's endpoints and cgroup limits. It needs root.

Lifecycle notes that shaped this code:
- JupyterHub never calls stop() when poll() already found the process dead, so poll() and
  clear_state() clean up too; every cleanup step is idempotent.
- The network slot comes from the spawner's database id, never from saved state.
- start() returns only once the server's port answers, so the hub checks it at once instead of
  waiting out its own exponential backoff.
- The server runs in its own session with its output in a log file: it survives a hub restart
  and poll() re-attaches to it through its cgroup.
- The server is PID 1 of its sandbox (see bwrap.py): if it dies, for whatever reason, the
  sandbox dies with it, and a pidfd on the sandbox's outermost process tells the hub at once
  (poll_and_notify: route removed, server reported stopped), not at the next 30 s poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import glob
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jupyterhub.spawner import Spawner
from traitlets import Bool, Float, Integer, List, Unicode, default

from ...audit import journal
from ...core import plan as planlib
from ...core.lifecycle import ProjectRules
from ...core.projects import Project
from ...core.values import parse_host_port
from ...core.workspace_proof import STATE_KEY, WorkspaceProof, new_proof
from ...workspace.server_args import guard_server_args
from ..gate import SpawnRefused, check_lifecycle, resolve_project
from . import host
from .bwrap import SandboxRuntime, bwrap_argv, options_file, passwd_entries
from .cgroups import CgroupLayout, SandboxCgroup
from .network import ServerNetwork, SiteNetwork
from .seccomp import workspace_filter
from .workspace_data import WorkspaceData

PACKAGE_DIR = Path(__file__).resolve().parents[2]


class SandboxSpawner(Spawner):
    """Run each workspace in a bubblewrap sandbox with its own network namespace."""

    state_root = Unicode(
        "/var/lib/cloisonne",
        config=True,
        help="Root of the workspace state: homes/<project>/<user>, shared/<project>, run/.",
    )
    datasets_root = Unicode(
        "/var/lib/cloisonne/datasets",
        config=True,
        help="Folder holding one sub-folder per dataset; a project's datasets appear "
        "read-only under /data.",
    )
    subnet = Unicode(
        SiteNetwork.subnet,
        config=True,
        help="IPv4 network from which each server gets a /30 (slot = spawner database id). "
        "It must not be used elsewhere on the host.",
    )
    name_prefix = Unicode(
        SiteNetwork.prefix,
        config=True,
        help="Prefix (1-4 lowercase characters) of the namespaces, interfaces, nft tables and "
        "cgroups this hub creates; give each hub on a machine its own.",
    )
    uid_base = Integer(
        200000,
        config=True,
        help="A user's uid inside the sandbox is uid_base + the user's database id.",
    )
    project_gid_base = Integer(
        300000,
        config=True,
        help="A project's gid (owner of its shared folder) is project_gid_base + the project "
        "group's database id.",
    )
    server_port = Integer(8888, config=True, help="Port of the server inside its namespace.")
    system_paths = List(
        Unicode(),
        config=True,
        help="Host paths bound read-only into every sandbox. The Python environment running "
        "the hub and this package's folder are always added.",
    )
    gpu_devices = List(
        Unicode(),
        config=True,
        help="Device nodes bound into sandboxes of projects granted a GPU (those that exist).",
    )
    ready_poll_interval = Float(
        0.02, config=True, help="Seconds between checks that the server's port answers."
    )
    stop_grace = Float(
        5.0, config=True, help="Seconds a stopping server gets after SIGTERM before SIGKILL."
    )
    workspace_config_dir = Unicode(
        str(PACKAGE_DIR / "workspace" / "jupyter_config"),
        config=True,
        help="Root-owned Jupyter config directory mounted read-only at /opt/cloisonne/jupyter "
        "and pinned as JUPYTER_CONFIG_DIR, so user-level config cannot override it.",
    )
    service_endpoints = List(
        Unicode(),
        config=True,
        help="'host:port' of platform services every workspace may reach besides the hub API "
        "(the cloisonne audit/airlock service, the project's S3 endpoint).",
    )
    guard = Bool(
        True,
        config=True,
        help="Run the workspace guard (closed download routes, audited reads, outflow meter, "
        "egress self-test). Only benchmarks measuring its cost turn it off.",
    )
    audit_journal_dir = Unicode(
        "",
        config=True,
        help="Root-only folder where each guarded server gets an audit journal (see "
        "cloisonne.audit.journal): the guard appends there in microseconds and the cloisonne "
        "service forwards it into the audit chain. Empty: the guard appends to the service "
        "over HTTP, a round trip per guarded read.",
    )
    package_index = Unicode(
        "",
        config=True,
        help="'host:port' of the package proxy (cloisonne.packages): workspaces may reach it and "
        "pip uses their project's index there. Empty: no package proxy.",
    )
    package_key_file = Unicode(
        "",
        config=True,
        help="Root-only file with the key the proxy checks workspace credentials with.",
    )
    pid = Integer(0)
    proof: WorkspaceProof | None = None  # set when the server has started (see get_state)
    _pidfd: int | None = None

    @default("system_paths")
    def _default_system_paths(self) -> list[str]:
        return ["/usr", "/etc"]

    @default("gpu_devices")
    def _default_gpu_devices(self) -> list[str]:
        return sorted(glob.glob("/dev/nvidia*")) + sorted(glob.glob("/dev/dri/renderD*"))

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        # jupyterhub-singleuser, minus a 1 s import (see cloisonne.workspace.launch)
        return [str(Path(sys.prefix, "bin", "python")), "-m", "cloisonne.workspace.launch"]

    # -- derived names -------------------------------------------------------------------

    @property
    def site(self) -> SiteNetwork:
        return SiteNetwork(self.subnet, self.name_prefix)

    @property
    def network(self) -> ServerNetwork:
        return self.site.slot(self.orm_spawner.id)

    @property
    def cgroup(self) -> SandboxCgroup:
        return SandboxCgroup(CgroupLayout.detect(), self.network.netns)

    @property
    def run_dir(self) -> Path:
        return Path(self.state_root, "run", self.network.netns)

    @property
    def log_file(self) -> Path:
        return Path(self.state_root, "logs", f"{self.user.name}--{self.name or 'default'}.log")

    # -- state ---------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.pid:
            state["pid"] = self.pid
        if self.proof:  # read by the service to tell this workspace's calls from any other
            state[STATE_KEY] = self.proof.to_state()
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.pid = state.get("pid", 0)
        self.proof = WorkspaceProof.from_state(state)

    def clear_state(self) -> None:
        super().clear_state()
        self.pid = 0
        self.proof = None
        if self.orm_spawner is not None:
            self._cleanup()

    # -- plan ----------------------------------------------------------------------------

    def project(self) -> tuple[Project, int]:
        """This server's project (and its stable index); refuses a twin of a running one."""
        project, project_index = resolve_project(self.user, self.name)
        check_lifecycle(project, ProjectRules(parent=self))
        self._refuse_twin(project.id)
        return project, project_index

    def build_plan(self, data: planlib.ProjectData) -> planlib.WorkspacePlan:
        """The whole plan: the project's data and every variable the server gets included."""
        project, project_index = self.project()
        hub_port = urlparse(self.hub.api_url).port or 80
        settings = planlib.PlanSettings(
            datasets_root=self.datasets_root,
            homes_root=str(Path(self.state_root, "homes")),
            shared_root=str(Path(self.state_root, "shared")),
            hub_api=planlib.Endpoint(self.site.hub_ip, hub_port, "hub API"),
            project_gid_base=self.project_gid_base,
            extra_endpoints=tuple(
                planlib.Endpoint(*parse_host_port(e), "platform service")
                for e in self.service_endpoints
            ),
        )
        if self.package_index:
            host, _, port = self.package_index.rpartition(":")
            try:
                key = Path(self.package_key_file).read_bytes()
            except OSError:
                raise SpawnRefused(
                    503,
                    f"The package proxy's key ({self.package_key_file}) is missing: the proxy "
                    "is not running; an administrator must restart the platform.",
                ) from None
            settings = dataclasses.replace(
                settings,
                package_index=planlib.Endpoint(host, int(port), "package proxy"),
                package_key=key,
            )
        user = planlib.User(self.user.name, self.uid_base + self.user.id)
        # The hub's own variables (API token, URLs) join the plan's; the plan wins on clashes.
        hub_env = {
            k: v
            for k, v in self.get_env().items()
            if k.startswith("JUPYTERHUB_") or k in self.environment
        }
        backend_env = {
            # the Python environment bound into the sandbox
            "PATH": f"{sys.prefix}/bin:/usr/local/bin:/usr/bin:/bin",
            # the cloisonne package the hub runs (bound read-only), whatever the venv's .pth says
            "PYTHONPATH": str(PACKAGE_DIR.parent),
            "JUPYTER_CONFIG_DIR": "/opt/cloisonne/jupyter",
            "JUPYTER_PATH": "/opt/cloisonne/jupyter/share",  # the platform's kernelspec first
        }
        try:
            return planlib.plan_workspace(
                project, user, settings, project_index=project_index, data=data,
                server_env=planlib.ServerEnv.of(hub_env, backend_env),
            )  # fmt: skip
        except ValueError as exc:  # e.g. a dataset named like the extract's mount point
            raise SpawnRefused(500, f"Project '{project.id}': {exc}") from None

    def _refuse_twin(self, project_id: str) -> None:
        """The default server of a one-project user *is* that project's workspace: never run
        it beside a named server of the same project (they would share a home)."""
        for name, other in self.user.spawners.items():
            if other is self or not other.active:
                continue
            try:
                other_project, _ = resolve_project(self.user, name)
            except SpawnRefused:
                continue
            if other_project.id == project_id:
                where = f"/user/{self.user.name}/{name}" if name else f"/user/{self.user.name}"
                raise SpawnRefused(
                    409, f"The workspace of project '{project_id}' is already running at {where}."
                )

    def runtime(self, plan: planlib.WorkspacePlan) -> SandboxRuntime:
        paths = list(dict.fromkeys([*self.system_paths, sys.prefix, str(PACKAGE_DIR.parent)]))
        # Paths already inside another bound path need no bind of their own.
        paths = [p for p in paths if not any(p != q and p.startswith(q + "/") for q in paths)]
        return SandboxRuntime(
            system_paths=tuple(paths),
            passwd_file=str(self.run_dir / "passwd"),
            group_file=str(self.run_dir / "group"),
            gpu_devices=tuple(d for d in self.gpu_devices if os.path.exists(d)),
            hostname=plan.project,
            extra_ro_binds=((self.workspace_config_dir, "/opt/cloisonne/jupyter"),),
        )

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> str:
        net = self.network
        # ip/port first: get_env() derives JUPYTERHUB_SERVICE_URL from them
        self.ip, self.port = net.sandbox_ip, self.server_port
        project, _ = self.project()
        # the project's extract and S3 bucket (creating the bucket talks to the store)
        data = await asyncio.to_thread(WorkspaceData(parent=self).project_data, project.id)
        plan = self.build_plan(data)
        try:
            await asyncio.to_thread(self._prepare_host, plan)
            self.pid = await self._launch(plan)
            await self._wait_ready(net)
        except BaseException:
            await asyncio.to_thread(self._cleanup)
            self.pid = 0
            raise
        self._watch(self.pid)
        self.proof = new_proof(self.api_token, net.sandbox_ip)
        return f"http://{net.sandbox_ip}:{self.server_port}"

    def _prepare_host(self, plan: planlib.WorkspacePlan) -> None:
        for mount in plan.mounts:
            if mount.volume == "dataset" and not Path(mount.source).is_dir():
                raise SpawnRefused(
                    500,
                    f"Dataset folder {mount.source} of project '{plan.project}' is missing; "
                    "an administrator must restore it or remove the dataset from the project.",
                )
            if mount.volume == "home":
                _make_dir(mount.source, plan.uid, plan.gid, 0o700, parent_mode=0o711)
            if mount.volume == "shared":
                # setgid: files created inside belong to the project group (umask is 002)
                _make_dir(mount.source, 0, plan.gid, 0o2770, parent_mode=0o711)
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        passwd, group = passwd_entries(plan)
        (self.run_dir / "seccomp.bpf").write_bytes(workspace_filter())
        (self.run_dir / "passwd").write_text(passwd)
        (self.run_dir / "group").write_text(group)
        for name in ("passwd", "group"):
            os.chmod(self.run_dir / name, 0o644)
        self.log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        host.ensure_hub_link(self.site)
        host.create_server_network(self.site, self.network, plan.allow, self.server_port)
        self.cgroup.create(plan.limits)

    async def _launch(self, plan: planlib.WorkspacePlan) -> int:
        net = self.network
        command = [*self.cmd, *self.get_args()]
        if self.guard:
            command += guard_server_args()
        procs_files = self.cgroup.procs_files()
        umask = plan.umask

        def enter_cgroup() -> None:  # runs in the child between fork and exec
            os.umask(umask)
            pid = str(os.getpid())
            for path in procs_files:
                with open(path, "w") as f:
                    f.write(pid)

        # bwrap reads the seccomp program from an inherited file descriptor
        seccomp_fd = os.open(self.run_dir / "seccomp.bpf", os.O_RDONLY | os.O_CLOEXEC)
        pass_fds = [seccomp_fd]
        if self.guard and self.audit_journal_dir:
            journal_fd = self._open_journal(plan)
            pass_fds.append(journal_fd)
            env = (*plan.env, ("CLOISONNE_AUDIT_JOURNAL_FD", str(journal_fd)))
            plan = dataclasses.replace(plan, env=tuple(sorted(env)))
        runtime = dataclasses.replace(self.runtime(plan), seccomp_fd=seccomp_fd)
        # bwrap's options (the environment with its secrets among them) from a descriptor,
        # not the command line every local user can read
        try:
            sandbox_argv = bwrap_argv(plan, runtime, command)
        except ValueError as exc:  # e.g. the platform installed inside a workspace mount point
            raise SpawnRefused(500, f"Project '{plan.project}': {exc}") from None
        options, rest = options_file(sandbox_argv)
        options_fd = os.memfd_create("bwrap-args", os.MFD_CLOEXEC)
        pass_fds.append(options_fd)
        os.write(options_fd, options)
        os.lseek(options_fd, 0, os.SEEK_SET)
        argv = ["ip", "netns", "exec", net.netns, "bwrap", "--args", str(options_fd), *rest]
        with open(self.log_file, "ab") as log, contextlib.ExitStack() as fds:
            for fd in pass_fds:
                fds.enter_context(_closing_fd(fd))
            proc = await asyncio.create_subprocess_exec(
                *argv,
                pass_fds=tuple(pass_fds),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                preexec_fn=enter_cgroup,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
            )
        self._proc = proc
        self.log.info("Sandbox for %s started: pid %s, %s", self._log_name, proc.pid, net.netns)
        return proc.pid

    def _open_journal(self, plan: planlib.WorkspacePlan) -> int:
        """A fresh journal for this server run: the header (who writes it) first, then an
        append-only descriptor for the server. Root-only, never mounted in the sandbox."""
        folder = Path(self.audit_journal_dir)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
        path = folder / f"{self.network.netns}-{time.time_ns()}{journal.SUFFIX}"
        header = journal.JournalHeader(plan.user, plan.project, self.name or "")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                     0o600)  # fmt: skip
        os.write(fd, header.encode())
        return fd

    def _close_journals(self) -> None:
        """Mark this server's journals finished; the service removes each once forwarded."""
        if not self.audit_journal_dir:
            return
        pattern = f"{glob.escape(self.network.netns)}-*{journal.SUFFIX}"
        for path in glob.glob(os.path.join(self.audit_journal_dir, pattern)):
            with contextlib.suppress(FileNotFoundError):
                os.rename(path, path[: -len(journal.SUFFIX)] + journal.CLOSED_SUFFIX)

    async def _wait_ready(self, net: ServerNetwork) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.returncode is not None or not self.cgroup.pids():
                self.log.error("%s exited during start-up:\n%s", self._log_name,
                               _tail(self.log_file))  # fmt: skip
                raise SpawnRefused(
                    500,
                    "The workspace server stopped during start-up: "
                    f"{_failure_reason(self.log_file)}",
                )
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(net.sandbox_ip, self.server_port), 1.0
                )
                writer.close()
                return
            except (OSError, TimeoutError):
                await asyncio.sleep(self.ready_poll_interval)
        raise TimeoutError(f"The workspace server did not answer within {self.start_timeout} s")

    def _watch(self, pid: int) -> None:
        """Notify the hub the moment the sandbox's outermost process (bwrap, whose exit follows
        the server's) exits. A pidfd works for a child of this hub and, after a hub restart,
        for a sandbox started by an earlier hub alike."""
        self._unwatch()
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return
        loop = asyncio.get_running_loop()

        def exited() -> None:
            self._unwatch()
            if self._poll_callback is not None:  # the hub polls us: it did not ask us to stop
                asyncio.ensure_future(self.poll_and_notify())

        loop.add_reader(fd, exited)
        self._pidfd = fd

    def _unwatch(self) -> None:
        fd, self._pidfd = self._pidfd, None
        if fd is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)

    async def poll(self) -> int | None:
        if self.orm_spawner is None:
            return 0
        try:
            pids = self.cgroup.pids()
        except (ValueError, RuntimeError):
            pids = set()
        # alive while the sandbox's outermost process is (the server is PID 1 inside it);
        # a sandbox from before pids were recorded: while its cgroup has processes
        alive = (self.pid in pids) if self.pid else bool(pids)
        if alive:
            if self._pidfd is None and self.pid:
                self._watch(self.pid)  # re-attach after a hub restart
            return None
        if self.pid:
            self.log.info("Sandbox of %s is gone; cleaning up", self._log_name)
        self._unwatch()
        await asyncio.to_thread(self._cleanup)
        self.pid = 0
        return 0

    async def stop(self, now: bool = False) -> None:
        self._unwatch()
        cgroup = self.cgroup
        if not now and cgroup.pids():
            cgroup.signal_all(signal.SIGTERM)
            deadline = time.monotonic() + self.stop_grace
            while cgroup.pids() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        await asyncio.to_thread(self._cleanup)
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.returncode is None:
            await proc.wait()  # reap our child so it does not linger as a zombie
        self.pid = 0

    def _cleanup(self) -> None:
        """Remove everything this server had on the host. Idempotent."""
        net = self.network
        self.cgroup.kill_and_remove()
        self._close_journals()  # after the kill: nothing writes to them any more
        host.remove_server_network(self.site, net)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def _make_dir(path: str, uid: int, gid: int, mode: int, parent_mode: int) -> None:
    p = Path(path)
    if not p.parent.is_dir():
        p.parent.mkdir(parents=True, mode=parent_mode)
        os.chmod(p.parent, parent_mode)
    if p.is_symlink():
        raise SpawnRefused(
            500, f"{path} is a symbolic link; refusing to use it as a workspace folder"
        )
    p.mkdir(exist_ok=True)
    os.chown(p, uid, gid)
    os.chmod(p, mode)


@contextlib.contextmanager
def _closing_fd(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def _failure_reason(path: Path) -> str:
    """The message of the last exception in a server log (what a user can act on)."""
    for line in reversed(_tail(path, 200).splitlines()):
        match = re.match(r"^\s*[\w.]*(?:Error|Exception): (.+)$", line)
        if match:
            return match.group(1)
    return "see the server log (ask your administrator)"


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
