"""cgroup layout detection and limit files, on fake hierarchies (v2 cannot be tried live on a
hybrid host, and v1 is exercised by the integration tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloisonne.backends.sandbox.cgroups import CgroupLayout, SandboxCgroup
from cloisonne.core.projects import Limits


def fake_mounts(tmp_path: Path, lines: list[str]) -> str:
    f = tmp_path / "mounts"
    f.write_text("\n".join(lines) + "\n")
    return str(f)


def test_v2_is_used_when_its_controllers_exist(tmp_path) -> None:
    v2 = tmp_path / "unified"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    mounts = fake_mounts(tmp_path, [f"cgroup2 {v2} cgroup2 rw 0 0"])
    layout = CgroupLayout._detect(mounts)
    assert layout.version == 2 and set(layout.roots.values()) == {str(v2)}


def test_v1_when_v2_has_no_controllers(tmp_path) -> None:
    v2 = tmp_path / "unified"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("hugetlb\n")
    mounts = fake_mounts(tmp_path, [
        f"cgroup2 {v2} cgroup2 rw 0 0",
        f"cgroup {tmp_path}/memory cgroup rw,memory 0 0",
        f"cgroup {tmp_path}/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0",
        f"cgroup {tmp_path}/pids cgroup rw,pids 0 0",
    ])  # fmt: skip
    layout = CgroupLayout._detect(mounts)
    assert layout.version == 1
    assert layout.roots == {"memory": f"{tmp_path}/memory", "cpu": f"{tmp_path}/cpu,cpuacct",
                            "pids": f"{tmp_path}/pids"}  # fmt: skip


def test_missing_controllers_are_an_error(tmp_path) -> None:
    mounts = fake_mounts(tmp_path, [f"cgroup {tmp_path}/memory cgroup rw,memory 0 0"])
    with pytest.raises(RuntimeError, match="cpu, pids are not available"):
        CgroupLayout._detect(mounts)


def test_v2_limit_files(tmp_path) -> None:
    layout = CgroupLayout(2, {c: str(tmp_path) for c in ("memory", "cpu", "pids")})
    cg = SandboxCgroup(layout, "cln-4")
    cg.create(Limits(cpu=1.5, memory_bytes=2**30, pids=200))
    d = tmp_path / "cloisonne" / "cln-4"
    assert (d / "memory.max").read_text() == str(2**30)
    assert (d / "cpu.max").read_text() == "150000 100000"
    assert (d / "pids.max").read_text() == "200"
    assert (tmp_path / "cloisonne" / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    assert cg.procs_files() == [str(d / "cgroup.procs")]


def test_v1_limit_files(tmp_path) -> None:
    roots = {c: str(tmp_path / c) for c in ("memory", "cpu", "pids")}
    layout = CgroupLayout(1, roots)
    cg = SandboxCgroup(layout, "cln-4")
    cg.create(Limits(cpu=0.5, memory_bytes=512 * 2**20, pids=64))
    assert (tmp_path / "memory/cloisonne/cln-4/memory.limit_in_bytes").read_text() == str(2**29)
    assert (tmp_path / "cpu/cloisonne/cln-4/cpu.cfs_quota_us").read_text() == "50000"
    assert (tmp_path / "pids/cloisonne/cln-4/pids.max").read_text() == "64"
    assert len(cg.procs_files()) == 3
