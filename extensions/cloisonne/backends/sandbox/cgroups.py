"""cgroup limits for one sandbox, on cgroup v2 where its controllers exist, else on v1.

Machines still ship hybrid layouts in which the v2 hierarchy has no controllers; there the v1
memory, cpu and pids hierarchies do the enforcing. Every operation is idempotent, so cleanup can
run from stop(), poll() and clear_state() alike.
"""

from __future__ import annotations

import errno
import functools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from ...core.projects import Limits

CONTROLLERS = ("memory", "cpu", "pids")
CPU_PERIOD_US = 100_000


def _mounts(proc_mounts: str = "/proc/mounts") -> list[tuple[str, str, set[str]]]:
    out = []
    with open(proc_mounts) as f:
        for line in f:
            _dev, mountpoint, fstype, options, *_ = line.split()
            out.append((mountpoint, fstype, set(options.split(","))))
    return out


@dataclass(frozen=True)
class CgroupLayout:
    """Where each controller lives: one v2 directory, or a v1 directory per controller."""

    version: int
    roots: dict[str, str]  # controller -> hierarchy root

    @classmethod
    def detect(cls) -> CgroupLayout:
        return _detect_layout()

    @classmethod
    def _detect(cls, proc_mounts: str = "/proc/mounts") -> CgroupLayout:
        mounts = _mounts(proc_mounts)
        for mountpoint, fstype, _ in mounts:
            if fstype == "cgroup2":
                available = Path(mountpoint, "cgroup.controllers").read_text().split()
                if all(c in available for c in CONTROLLERS):
                    return cls(2, {c: mountpoint for c in CONTROLLERS})
        roots = {}
        for mountpoint, fstype, options in mounts:
            if fstype == "cgroup":
                for controller in CONTROLLERS:
                    if controller in options:
                        roots[controller] = mountpoint
        missing = [c for c in CONTROLLERS if c not in roots]
        if missing:
            raise RuntimeError(
                f"cgroup controller(s) {', '.join(missing)} are not available in v2 or v1: "
                "workspace limits cannot be enforced"
            )
        return cls(1, roots)


@functools.cache
def _detect_layout() -> CgroupLayout:
    # Mounts do not change while the hub runs; spawners ask on every readiness poll.
    return CgroupLayout._detect()


class SandboxCgroup:
    """The cgroup(s) of one sandbox: ``<root>/<parent>/<name>`` per hierarchy."""

    def __init__(self, layout: CgroupLayout, name: str, parent: str = "cloisonne"):
        self.layout, self.name, self.parent = layout, name, parent

    @property
    def paths(self) -> list[Path]:
        roots = sorted(set(self.layout.roots.values()))
        return [Path(root, self.parent, self.name) for root in roots]

    def _path(self, controller: str) -> Path:
        return Path(self.layout.roots[controller], self.parent, self.name)

    def create(self, limits: Limits) -> None:
        if self.layout.version == 2:
            parent = Path(self.layout.roots["memory"], self.parent)
            parent.mkdir(exist_ok=True)
            Path(parent.parent, "cgroup.subtree_control").write_text("+memory +cpu +pids")
            parent.joinpath("cgroup.subtree_control").write_text("+memory +cpu +pids")
        for path in self.paths:
            path.mkdir(parents=True, exist_ok=True)
        memory = str(limits.memory_bytes)
        quota = str(int(limits.cpu * CPU_PERIOD_US))
        if self.layout.version == 2:
            path = self._path("memory")
            path.joinpath("memory.max").write_text(memory)
            if path.joinpath("memory.swap.max").exists():
                path.joinpath("memory.swap.max").write_text("0")
            path.joinpath("pids.max").write_text(str(limits.pids))
            path.joinpath("cpu.max").write_text(f"{quota} {CPU_PERIOD_US}")
        else:
            mem = self._path("memory")
            mem.joinpath("memory.limit_in_bytes").write_text(memory)
            if mem.joinpath("memory.memsw.limit_in_bytes").exists():
                mem.joinpath("memory.memsw.limit_in_bytes").write_text(memory)
            self._path("pids").joinpath("pids.max").write_text(str(limits.pids))
            cpu = self._path("cpu")
            cpu.joinpath("cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
            cpu.joinpath("cpu.cfs_quota_us").write_text(quota)

    def procs_files(self) -> list[str]:
        return [str(path / "cgroup.procs") for path in self.paths]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.paths:
            try:
                found.update(int(p) for p in path.joinpath("cgroup.procs").read_text().split())
            except FileNotFoundError:
                continue
        return found

    def exists(self) -> bool:
        return any(path.is_dir() for path in self.paths)

    def signal_all(self, sig: int) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def kill_and_remove(self, timeout: float = 5.0) -> None:
        """SIGKILL everything inside, then remove the directories (idempotent)."""
        deadline = time.monotonic() + timeout
        while self.pids() and time.monotonic() < deadline:
            self.signal_all(signal.SIGKILL)
            time.sleep(0.02)
        for path in self.paths:
            while True:
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    # EBUSY while the last killed process is being reaped
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)

    def stats(self) -> dict[str, int]:
        """Current memory use and OOM kills (for tests and benchmarks)."""
        out: dict[str, int] = {}
        mem = self._path("memory")
        if self.layout.version == 2:
            out["memory_bytes"] = int(mem.joinpath("memory.current").read_text())
            events = dict(
                line.split() for line in mem.joinpath("memory.events").read_text().splitlines()
            )
            out["oom_kills"] = int(events.get("oom_kill", 0))
        else:
            out["memory_bytes"] = int(mem.joinpath("memory.usage_in_bytes").read_text())
            oom = dict(
                line.split() for line in mem.joinpath("memory.oom_control").read_text().splitlines()
            )
            out["oom_kills"] = int(oom.get("oom_kill", 0))
        return out
