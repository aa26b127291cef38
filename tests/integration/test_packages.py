"""The package proxy from inside real workspaces: pip installs allowed packages into a kernel,
refuses others with the message, and the workspace still reaches nothing else (issue 15).

The "upstream" is a static simple index on the hub's host-only address (an address workspaces
do reach, for the hub API), so "the workspace cannot reach the upstream" is the firewall's
doing, not a missing route; its wheels are made in the test (no network needed).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from cloisonne.audit.store import AuditStore
from cloisonne.platform.localhub import LocalHub

from tests.packages.wheels import make_wheel, write_simple_index

from .conftest import allocate_site, free_port, make_hub, running_hub
from .workspace import Workspace, running

PIP = """
import subprocess, sys
r = subprocess.run([sys.executable, "-m", "pip", "install", {args}], capture_output=True,
                   text=True, timeout=120)
print("RC", r.returncode)
print(r.stdout + r.stderr)
"""


PROBE = """
import json, socket
result = {}
for name, (host, port) in TARGETS.items():
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, port)); result[name] = "connected"
    except OSError as exc:
        result[name] = type(exc).__name__
    finally:
        s.close()
print(json.dumps(result))
"""


def wheels(folder: Path) -> list[Path]:
    return [
        make_wheel(folder, "alpha", "1.0", requires=["beta"]),
        make_wheel(folder, "beta", "1.0"),
        make_wheel(folder, "gamma", "1.0"),
        make_wheel(folder, "delta", "1.0", requires=["gamma"]),
        # needs a distribution the platform's environment has (and no list names)
        make_wheel(folder, "epsilon", "1.0", requires=["packaging"]),
        make_wheel(folder, "zeta", "1.0"),
    ]


def served_events(hub: LocalHub) -> list:
    store = AuditStore(hub.db_url, create=False)
    try:
        return [e for e in store.iter_events() if e.type.startswith("packages.")]
    finally:
        store.close()


def pip_in(ws: Workspace, *packages: str) -> tuple[int, str]:
    out = ws.run(PIP.format(args=", ".join(repr(p) for p in packages)), timeout=180)
    first, _, rest = out.partition("\n")
    return int(first.split()[1]), rest


@pytest.fixture(scope="module")
def connected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalHub, dict]]:
    tmp = tmp_path_factory.mktemp("packages")
    files = wheels(tmp / "dists")
    root = write_simple_index(files, tmp / "upstream")
    upstream_port, proxy_port = free_port(), free_port()
    site = allocate_site("k")
    hub_ip = site.hub_ip
    env = {"CLOISONNE_PACKAGES": "connected", "CLOISONNE_PACKAGES_PORT": str(proxy_port),
           "CLOISONNE_PACKAGES_UPSTREAM": f"http://{hub_ip}:{upstream_port}/",
           "CLOISONNE_PACKAGES_ALLOW": "alpha beta delta epsilon zeta"}  # fmt: skip
    with running_hub("k", site=site, extra_env=env) as hub:
        # on the hub's address, which exists once the hub runs (the proxy asks it lazily)
        handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
        upstream = http.server.ThreadingHTTPServer((hub_ip, upstream_port), handler)
        threading.Thread(target=upstream.serve_forever, daemon=True).start()
        # a listener on the proxy's next port: a workspace must not reach it either
        other = socket.create_server((hub_ip, proxy_port + 1))
        try:
            yield hub, {"files": files, "upstream": (hub_ip, upstream_port),
                        "other": (hub_ip, proxy_port + 1)}  # fmt: skip
        finally:
            other.close()
            upstream.shutdown()
            upstream.server_close()


def test_allowed_package_installs_with_its_dependency_and_imports_in_a_fresh_kernel(
    connected: tuple[LocalHub, dict],
) -> None:
    hub, info = connected
    with running(hub, ("alice", "cardio")) as (ws,):
        rc, out = pip_in(ws, "alpha")
        assert rc == 0, out
        # a new kernel (not the one pip ran in) imports both
        assert ws.run("import alpha, beta; print(alpha.VALUE, '|', beta.VALUE)").strip() == (
            "alpha 1.0 | beta 1.0")  # fmt: skip
        # what is installed already counts: the user's own packages, the platform's
        rc, out = pip_in(ws, "alpha")
        assert rc == 0 and "Requirement already satisfied: alpha" in out, out
        rc, out = pip_in(ws, "epsilon")
        assert rc == 0 and "Requirement already satisfied: packaging" in out, out
        # `%pip` in a notebook goes the same way, and shows the refusal in the cell's output
        out = ws.run("%pip install gamma")
        assert "gamma is not on the package allow-list of project cardio" in out, out

        rc, out = pip_in(ws, "gamma")
        assert rc != 0
        assert "gamma is not on the package allow-list of project cardio" in out, out
        assert "Ask a lead of project cardio or an admin" in out
        rc, out = pip_in(ws, "delta")  # allowed, but its dependency is not
        assert rc != 0 and "gamma is not on the package allow-list" in out, out

        # the upstream and the proxy's other ports are out of reach, though on an address
        # the workspace reaches for the hub API
        targets = {"upstream": info["upstream"], "other": info["other"]}
        reached = json.loads(ws.run(PROBE.replace("TARGETS", json.dumps(targets))))
        assert reached["upstream"] != "connected" and reached["other"] != "connected", reached

    events = served_events(hub)
    alpha = [e for e in events if e.type == "packages.served" and e.fields["package"] == "alpha"]
    assert alpha, events
    sha = hashlib.sha256(info["files"][0].read_bytes()).hexdigest()
    assert (alpha[0].user, alpha[0].project, alpha[0].fields["version"]) == ("alice", "cardio",
                                                                              "1.0")  # fmt: skip
    assert alpha[0].fields["sha256"] == sha and alpha[0].fields["source"] == "upstream"
    refused = {(e.user, e.fields["package"]) for e in events if e.type == "packages.refused"}
    assert ("alice", "gamma") in refused


def test_project_allow_list_edited_by_command_takes_effect(
    connected: tuple[LocalHub, dict],
) -> None:
    hub, _ = connected
    env = {**hub.env(), "CLOISONNE_STATE": str(hub.state)}
    allow = subprocess.run(
        [sys.executable, "-m", "cloisonne.platform.cli", "packages", "allow", "onco", "gamma"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert allow.returncode == 0, allow.stdout + allow.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "cloisonne.platform.cli", "packages", "allow", "onco", "x>>1"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1 and "not a version range" in bad.stderr
    with running(hub, ("dave", "onco")) as (ws,):
        rc, out = pip_in(ws, "gamma")
        assert rc == 0, out
    with running(hub, ("alice", "cardio")) as (ws,):  # cardio's list did not change
        rc, out = pip_in(ws, "gamma")
        assert rc != 0 and "not on the package allow-list of project cardio" in out


def test_air_gapped_installs_from_the_wheelhouse(tmp_path: Path) -> None:
    files = wheels(tmp_path / "brought-in")
    env = {"CLOISONNE_PACKAGES": "air-gapped", "CLOISONNE_PACKAGES_PORT": str(free_port()),
           "CLOISONNE_PACKAGES_ALLOW": "alpha beta",
           # an upstream nobody serves: air-gapped mode never asks it
           "CLOISONNE_PACKAGES_UPSTREAM": "http://127.0.0.1:9/simple/"}  # fmt: skip
    hub = make_hub("w", extra_env=env)
    cli_env = {**hub.env(), "CLOISONNE_STATE": str(hub.state)}
    for req in ("alpha==1.0", "beta"):
        add = subprocess.run(
            [sys.executable, "-m", "cloisonne.platform.cli", "packages", "add", req,
             "--from-dir", str(files[0].parent)],
            capture_output=True, text=True, env=cli_env, timeout=60,
        )  # fmt: skip
        assert add.returncode == 0 and "added" in add.stdout, add.stdout + add.stderr
    try:
        hub.start()
        with running(hub, ("bob", "cardio")) as (ws,):
            rc, out = pip_in(ws, "alpha")
            assert rc == 0, out
            assert "alpha 1.0" in ws.run("import alpha; print(alpha.VALUE)")
        sources = {e.fields.get("source") for e in served_events(hub)
                   if e.type == "packages.served"}  # fmt: skip
        assert sources == {"wheelhouse"}
    finally:
        hub.teardown()


PTH_PROBE = """
import os, sys, sysconfig
prefix = os.environ["CLOISONNE_USER_PREFIX"]
where = sysconfig.get_path("purelib", "posix_prefix", vars={"base": prefix, "platbase": prefix})
os.makedirs(where, exist_ok=True)
# a .pth line runs in every Python that has this folder as a site directory
with open(os.path.join(where, "zz_probe.pth"), "w") as f:
    f.write("import sys, os; open(os.path.expanduser('~/pth-ran-%d' % os.getpid()), 'w')"
            ".write(' '.join(sys.argv))\\n")
print(where)
"""


def test_user_packages_reach_kernels_never_the_server(connected: tuple[LocalHub, dict]) -> None:
    """What a user installs (code that runs at import, .pth lines) loads in their kernels, and
    the server, which enforces the guard, never loads it, even after a restart."""
    from .workspace import spawn, stop

    hub, _ = connected
    ws = spawn(hub, "bob", "cardio")
    try:
        ws.run(PTH_PROBE)
        stop(hub, "bob", "cardio")
        ws = spawn(hub, "bob", "cardio")  # a new server process reads its path afresh
        ran = ws.run_json("""
            import glob, json, os
            print(json.dumps([open(p).read() for p in glob.glob(os.path.expanduser("~/pth-ran-*"))]))
        """)  # fmt: skip
    finally:
        stop(hub, "bob", "cardio")
    assert ran, "the kernel should have run the user's .pth"
    assert all(argv.split()[0].endswith("workspace/kernel.py") for argv in ran), ran


def test_a_project_can_share_one_environment(connected: tuple[LocalHub, dict]) -> None:
    hub, _ = connected
    properties = hub.api("GET", "/groups/onco").json()["properties"]
    shared = {**properties, "package_env": "shared"}
    assert hub.api("PUT", "/groups/onco/properties", json=shared).ok
    try:
        with running(hub, ("dave", "onco")) as (ws,):
            rc, out = pip_in(ws, "zeta")
            assert rc == 0, out
        with running(hub, ("bob", "onco")) as (ws,):  # another member, a fresh kernel
            assert ws.run("import zeta; print(zeta.__file__)").startswith("/shared/")
    finally:
        assert hub.api("PUT", "/groups/onco/properties", json=properties).ok
    with running(hub, ("bob", "onco")) as (ws,):  # back to each member's own
        out = ws.run("import importlib.util as u; print(u.find_spec('zeta'))")
        assert out.strip() == "None", out
