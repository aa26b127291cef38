"""Isolation guarantees, each proven from inside a running workspace."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from cloisonne.backends.sandbox.cgroups import CgroupLayout, SandboxCgroup
from cloisonne.platform.localhub import LocalHub

from .workspace import Workspace, spawn, stop


@pytest.fixture(scope="module")
def two_workspaces(platform: LocalHub):
    """alice in cardio and dave in onco, spawned concurrently."""
    results: dict[str, Workspace] = {}
    errors: list[BaseException] = []

    def start(user: str, server: str) -> None:
        try:
            results[user] = spawn(platform, user, server)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=a) for a in (("alice", "cardio"),
                                                                ("dave", "onco"))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors, errors
        yield results["alice"], results["dave"]
    finally:
        for user, server in (("alice", "cardio"), ("dave", "onco")):
            if user in results:
                stop(platform, user, server)


PROBE = """
import json, os, errno
def writable(path):
    try:
        with open(os.path.join(path, 'probe'), 'w') as f:
            f.write('x')
        return 'yes'
    except OSError as e:
        return errno.errorcode[e.errno]
def walk_names(top):
    found = []
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in ('/proc', '/sys', '/usr', '/dev')]
        found += files
    return found
status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)
pids = [p for p in os.listdir('/proc') if p.isdigit()]
print(json.dumps({
    'uid': os.getuid(), 'gid': os.getgid(), 'groups': os.getgroups(),
    'home': os.path.expanduser('~'), 'cwd': os.getcwd(),
    'data': sorted(os.listdir('/data')),
    'data_files': sorted(os.listdir('/data/' + sorted(os.listdir('/data'))[0])),
    'data_writable': writable('/data/' + sorted(os.listdir('/data'))[0]),
    'home_listing': sorted(os.listdir('/home')),
    'root_listing': sorted(os.listdir('/')),
    'all_files': walk_names('/'),
    'cap_eff': status['CapEff'].strip(), 'cap_bnd': status['CapBnd'].strip(),
    'no_new_privs': status['NoNewPrivs'].strip(),
    'pid_users': sorted({os.stat('/proc/' + p).st_uid for p in pids}),
    'cmdlines': [open('/proc/%s/cmdline' % p, 'rb').read().decode(errors='replace') for p in pids],
    'shared_mode': oct(os.stat('/shared').st_mode), 'umask': oct(os.umask(0o022)),
    'tmp_writable': writable('/tmp'), 'shm_writable': writable('/dev/shm'),
}))
"""


def test_each_workspace_sees_only_its_project(platform: LocalHub, two_workspaces) -> None:
    alice, dave = two_workspaces
    # A marker in each home that the other workspace must not find anywhere.
    alice.run("open('alice-secret.txt', 'w').write('a')")
    dave.run("open('dave-secret.txt', 'w').write('d')")
    a = alice.run_json(PROBE)
    d = dave.run_json(PROBE)

    assert a["data"] == ["dcir-sample", "pmsi-sample"]
    assert d["data"] == ["cancer-registry-sample"]
    assert a["data_files"] == ["dispensings.csv"]
    assert a["data_writable"] in ("EROFS", "EACCES") and d["data_writable"] in ("EROFS", "EACCES")
    assert a["home_listing"] == ["alice"] and d["home_listing"] == ["dave"]
    assert "dave-secret.txt" not in a["all_files"] and "alice-secret.txt" in a["all_files"]
    assert "alice-secret.txt" not in d["all_files"] and "dave-secret.txt" in d["all_files"]
    assert "cases.csv" not in a["all_files"] and "dispensings.csv" not in d["all_files"]
    # Nothing of the host: only the allow-listed system paths and the workspace mounts.
    assert not {"root", "var", "srv", "mnt", "boot"} & set(a["root_listing"])


def test_workspace_runs_unprivileged(platform: LocalHub, two_workspaces) -> None:
    alice, _ = two_workspaces
    a = alice.run_json(PROBE)
    assert a["uid"] >= 200000 and a["gid"] >= 300000 and a["groups"] == []
    assert a["cap_eff"] == "0000000000000000" and a["cap_bnd"] == "0000000000000000"
    assert a["no_new_privs"] == "1"
    assert a["home"] == a["cwd"] == "/home/alice"
    assert a["shared_mode"] == oct(0o42770) and a["umask"] == "0o2"
    assert a["tmp_writable"] == a["shm_writable"] == "yes"


def test_other_sandboxes_processes_are_invisible(platform: LocalHub, two_workspaces) -> None:
    alice, dave = two_workspaces
    a = alice.run_json(PROBE)
    d = dave.run_json(PROBE)
    # Only the workspace's own uid (and root-owned pid 1 of the sandbox's pid namespace).
    assert set(a["pid_users"]) <= {0, a["uid"]} and set(d["pid_users"]) <= {0, d["uid"]}
    assert not any("dave" in c for c in a["cmdlines"])
    assert len(a["cmdlines"]) < 15  # bwrap init, server, kernels — not the host's processes


def test_memory_limit_kills_the_offender(platform: LocalHub, two_workspaces) -> None:
    alice, _ = two_workspaces
    layout = CgroupLayout.detect()
    netns = _netns_of(platform, "alice", "cardio")
    before = SandboxCgroup(layout, netns).stats()["oom_kills"]
    out = alice.run_json(
        """
        import json, subprocess, sys
        # 512M limit: allocate and touch 1 GiB in a child process
        p = subprocess.run([sys.executable, '-c', 'b = bytearray(1024 * 2**20); print(len(b))'])
        print(json.dumps({'returncode': p.returncode}))
        """
    )
    assert out["returncode"] == -9  # SIGKILL from the OOM killer
    assert SandboxCgroup(layout, netns).stats()["oom_kills"] > before
    # The kernel and server survive: the workspace still answers.
    assert alice.run("print(1 + 1)").strip() == "2"


def test_pids_limit(platform: LocalHub, two_workspaces) -> None:
    alice, _ = two_workspaces
    out = alice.run_json(
        """
        import json, subprocess
        procs, error = [], None
        try:
            for _ in range(400):
                procs.append(subprocess.Popen(['sleep', '60']))
        except OSError as e:
            error = type(e).__name__
        for p in procs:
            p.kill(); p.wait()
        print(json.dumps({'started': len(procs), 'error': error}))
        """
    )
    assert out["error"] is not None and out["started"] < 128


def _netns_of(hub: LocalHub, user: str, server: str) -> str:
    """The sandbox's namespace name, from the spawner's database id (as the spawner does)."""
    return hub.site.slot(hub.spawner_id(user, server)).netns


def test_secrets_are_not_on_any_host_command_line(platform: LocalHub, two_workspaces) -> None:
    """Every local user can read every process's command line (ps); bwrap, the sandbox's
    parent for its whole life, gets its options (the environment: hub token, S3 secret) from a
    descriptor instead."""
    alice, _ = two_workspaces
    token = alice.run("import os; print(os.environ['JUPYTERHUB_API_TOKEN'])").strip()
    assert len(token) >= 32
    cmdlines = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdlines[int(pid)] = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
    assert not [pid for pid, c in cmdlines.items() if token.encode() in c]
    bwraps = [c for c in cmdlines.values() if c.startswith(b"bwrap\0--args\0")]
    assert bwraps and not [c for c in bwraps if b"--setenv" in c]
