"""Compile a WorkspacePlan into a bubblewrap + setpriv command line (pure).

The sandbox root is an empty tmpfs into which only an allow-list of host paths is bound,
read-only; the workspace's own mounts (data read-only, home and shared folder read-write) come
from the plan. The user id is switched with setpriv inside the sandbox, not with
``bwrap --unshare-user --uid`` (which, run as root, maps to host root).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ...core.plan import WorkspacePlan

# Merged-/usr Debian: /bin, /lib, /lib64 and /sbin are symlinks into /usr.
USR_SYMLINKS = (
    ("usr/bin", "/bin"),
    ("usr/sbin", "/sbin"),
    ("usr/lib", "/lib"),
    ("usr/lib64", "/lib64"),
)


@dataclass(frozen=True)
class SandboxRuntime:
    """Host paths the sandbox needs besides the plan's mounts."""

    # Read-only system paths visible in every sandbox (the Python prefix and venv among them).
    system_paths: tuple[str, ...] = ("/usr", "/etc")
    # Files generated per server (passwd/group naming only the sandbox user), bound over /etc.
    passwd_file: str = ""
    group_file: str = ""
    # Devices bound read-write when the plan grants GPUs (only those that exist).
    gpu_devices: tuple[str, ...] = ()
    seccomp_fd: int | None = None
    hostname: str = "workspace"
    extra_ro_binds: tuple[tuple[str, str], ...] = field(default=())


def _parents(path: str) -> list[str]:
    parts = PurePosixPath(path).parents
    return [str(p) for p in reversed(parts) if str(p) != "/"]


@dataclass(frozen=True)
class MountStep:
    """One bwrap filesystem option: ``options`` (``--perms`` included) ending at ``target``."""

    target: str
    options: tuple[str, ...]
    # False for --dir and --symlink, which create a path but hide nothing under it
    covers: bool = True


def _depth(path: str) -> int:
    return len(PurePosixPath(path).parts)


def _under(path: str, root: str) -> bool:
    """``path`` is ``root`` or lies below it."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def order_mounts(steps: Sequence[MountStep]) -> list[MountStep]:
    """The steps in an order where no mount hides an earlier one.

    bwrap applies its options in order, so a mount at a path hides everything mounted under
    it before: with the platform cloned under /tmp, a ``--tmpfs /tmp`` after ``--ro-bind
    /tmp/clone/.venv`` hid the venv and no workspace could start. Mounting shallower paths
    first (a stable sort: steps at one depth keep their order) puts every bind after the
    mounts of its parents. Two mounts at one path cannot both be seen: refused.
    """
    ordered = sorted(steps, key=lambda step: _depth(step.target))
    seen: dict[str, MountStep] = {}
    for step in ordered:
        if step.covers and step.target in seen:
            raise ValueError(
                f"two sandbox mounts at {step.target}: {' '.join(seen[step.target].options)} "
                f"and {' '.join(step.options)}"
            )
        if step.covers:
            seen[step.target] = step
    return ordered


def mount_steps(plan: WorkspacePlan, runtime: SandboxRuntime) -> list[MountStep]:
    """The sandbox's filesystem, in the order written here (see ``order_mounts``)."""
    platform = [*runtime.system_paths, *(target for _, target in runtime.extra_ro_binds)]
    for path in platform:
        for mount in plan.mounts:
            if _under(path, mount.target):
                # the bind would land inside the user's home or data and hide or write there
                raise ValueError(
                    f"the platform's path {path} lies under the workspace's mount point "
                    f"{mount.target}; install Cloisonné outside {mount.target}"
                )
    steps = [
        MountStep("/", ("--tmpfs", "/")),
        MountStep("/home", ("--perms", "0755", "--dir", "/home"), covers=False),
        MountStep("/opt", ("--perms", "0755", "--dir", "/opt"), covers=False),
        MountStep("/run", ("--perms", "0755", "--dir", "/run"), covers=False),
        MountStep("/proc", ("--proc", "/proc")),
        MountStep("/dev", ("--dev", "/dev")),
        # Private /tmp and /dev/shm, writable by the user like any /tmp (bwrap's default is
        # 0755; multiprocessing's semaphores, hence Dask's LocalCluster, need /dev/shm).
        MountStep("/tmp", ("--perms", "1777", "--tmpfs", "/tmp")),
        MountStep("/dev/shm", ("--perms", "1777", "--tmpfs", "/dev/shm")),
    ]
    created: set[str] = {step.target for step in steps}

    def ensure_parents(target: str) -> None:
        # bwrap creates missing parents 0700 owned by root: the sandbox user could not
        # traverse them, so create each one explicitly with 0755 first.
        for parent in _parents(target):
            if parent not in created and not any(_under(parent, p) for p in runtime.system_paths):
                steps.append(MountStep(parent, ("--perms", "0755", "--dir", parent), covers=False))
                created.add(parent)

    for path in runtime.system_paths:
        ensure_parents(path)
        steps.append(MountStep(path, ("--ro-bind", path, path)))
    for link, target in USR_SYMLINKS:
        steps.append(MountStep(target, ("--symlink", link, target), covers=False))
    for source, target in runtime.extra_ro_binds:
        ensure_parents(target)
        steps.append(MountStep(target, ("--ro-bind", source, target)))
    if runtime.passwd_file:
        steps.append(MountStep("/etc/passwd", ("--ro-bind", runtime.passwd_file, "/etc/passwd")))
    if runtime.group_file:
        steps.append(MountStep("/etc/group", ("--ro-bind", runtime.group_file, "/etc/group")))
    if plan.limits.gpus:
        for device in runtime.gpu_devices:
            steps.append(MountStep(device, ("--dev-bind", device, device)))
    for mount in plan.mounts:
        ensure_parents(mount.target)
        option = "--ro-bind" if mount.read_only else "--bind"
        steps.append(MountStep(mount.target, (option, mount.source, mount.target)))
    return steps


def mount_options(plan: WorkspacePlan, runtime: SandboxRuntime) -> list[str]:
    """bwrap's filesystem options for the plan, parents mounted before what lies under them."""
    return [option for step in order_mounts(mount_steps(plan, runtime)) for option in step.options]


def bwrap_argv(plan: WorkspacePlan, runtime: SandboxRuntime, command: Sequence[str]) -> list[str]:
    """The full argv: ``bwrap ... -- setpriv ... -- command``.

    The environment is cleared and rebuilt from the plan, so nothing of the hub's environment
    (tokens, paths) leaks in except what the spawner passes deliberately through the plan.
    """
    # No --die-with-parent: a workspace must outlive a hub restart.
    # --as-pid-1: the server (setpriv execs it) is PID 1 of the sandbox's PID namespace, not a
    # child of bwrap's reaper. The kernel never delivers SIGKILL or SIGSTOP sent from inside the
    # namespace to its PID 1, nor any signal PID 1 has no handler for; and when PID 1 exits the
    # kernel kills every process left in the namespace. So user code cannot kill the server,
    # and nothing of it survives the server to bind the server's port and impersonate it.
    argv = ["bwrap"]
    argv += [
        "--unshare-pid", "--as-pid-1", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--hostname", runtime.hostname,
        "--new-session",
        "--clearenv",
    ]  # fmt: skip
    argv += mount_options(plan, runtime)
    for key, value in plan.env:
        argv += ["--setenv", key, value]
    argv += ["--chdir", plan.workdir]
    if runtime.seccomp_fd is not None:
        argv += ["--seccomp", str(runtime.seccomp_fd)]
    argv += [
        "--",
        "setpriv",
        f"--reuid={plan.uid}",
        f"--regid={plan.gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
        *command,
    ]
    return argv


def options_file(argv: Sequence[str]) -> tuple[bytes, list[str]]:
    """Split ``bwrap_argv``'s result for ``bwrap --args FD``: (its options, NUL-separated, to be
    read from a descriptor; the rest, from ``--`` on).

    Why: a process's command line is readable by every local user (``ps``), and bwrap stays
    alive as the sandbox's parent for its whole life. The options hold the environment, hence
    the server's hub token and the project's S3 secret; read from a descriptor they never
    appear in /proc/<pid>/cmdline. The command after ``--`` holds no secret.
    """
    if not argv or argv[0] != "bwrap" or "--" not in argv:
        raise ValueError("not a bwrap command line with a '--' before the command")
    end = list(argv).index("--")
    options = "".join(f"{a}\0" for a in argv[1:end]).encode()
    return options, list(argv[end:])


def passwd_entries(plan: WorkspacePlan) -> tuple[str, str]:
    """/etc/passwd and /etc/group for the sandbox: only root, nobody and the workspace user."""
    passwd = (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"{plan.user}:x:{plan.uid}:{plan.gid}:{plan.user}:{plan.home}:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    group = f"root:x:0:\n{plan.project}:x:{plan.gid}:{plan.user}\nnogroup:x:65534:\n"
    return passwd, group
