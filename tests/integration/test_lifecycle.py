"""Lifecycle: repeated spawn/stop leaves nothing behind, servers survive a hub crash, idle
servers are culled."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import requests
from cloisonne.backends.sandbox.sweep import leftovers
from cloisonne.platform.localhub import LocalHub

from .conftest import RUN_TAG, find_pids, make_hub
from .workspace import spawn, stop, user_token

CYCLES = 50


def workspace_processes(hub: LocalHub) -> list[int]:
    """PIDs of processes started in this hub's workspaces: not root (the hub's own services
    run as root) and with the hub's own address, unique to this run, in their environment."""
    return find_pids(environ=f"JUPYTERHUB_API_URL=http://{hub.site.hub_ip}:".encode(),
                     non_root=True)  # fmt: skip


def sandbox_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "bwrap" in line and f"t{RUN_TAG}" in line]


def cullers_of(hub: LocalHub) -> list[int]:
    """PIDs of idle-culler processes talking to this hub."""
    api = f"JUPYTERHUB_API_URL=http://{hub.site.hub_ip}:{hub.hub_port}/"  # unique to this hub
    return find_pids(b"jupyterhub_idle_culler", api.encode())


def test_spawn_stop_cycles_leave_nothing_behind(platform: LocalHub) -> None:
    before = leftovers(platform.site)
    for _ in range(CYCLES):
        spawn(platform, "alice", "cardio")
        assert leftovers(platform.site)["netns"], "a running server has its namespace"
        assert workspace_processes(platform), "a running server's processes are found"
        stop(platform, "alice", "cardio")
    assert leftovers(platform.site) == before == {
        "netns": [], "links": [], "nft_tables": [], "cgroups": []
    }  # fmt: skip
    assert workspace_processes(platform) == []
    assert sandbox_processes() == []


def test_servers_survive_a_hub_crash() -> None:
    hub = make_hub("k")
    try:
        hub.start()
        spawn(hub, "alice", "cardio")
        spawn(hub, "bob", "onco")
        tokens = {u: user_token(hub, u) for u in ("alice", "bob")}
        alice_home = hub.state / "homes/cardio/alice"
        old_cullers = cullers_of(hub)
        hub.kill9()
        # The sandboxes are still running while the hub is down ...
        assert len(leftovers(hub.site)["netns"]) == 2
        hub.start()
        # ... and are re-attached: both reachable through the proxy with the users' tokens.
        for user, server in (("alice", "cardio"), ("bob", "onco")):
            r = requests.get(
                f"{hub.url}/user/{user}/{server}/api/status",
                headers={"Authorization": f"token {tokens[user]}"},
                timeout=30,
            )
            assert r.status_code == 200, (user, r.status_code, hub.log_tail())
            model = hub.api("GET", f"/users/{user}").json()["servers"][server]
            assert model["ready"]
        assert alice_home.is_dir()
        # The crashed hub's culler died with it (SIGKILL as it died; under heavy disk load a
        # process can take seconds to act on it): one culler, the new hub's.
        deadline = time.monotonic() + 30
        while (set(old_cullers) & set(cullers_of(hub))) and time.monotonic() < deadline:
            time.sleep(0.2)
        survivors = set(old_cullers) & set(cullers_of(hub))
        assert not survivors, [Path(f"/proc/{p}/status").read_text()[:300] for p in survivors]
        assert len(cullers_of(hub)) == 1
        stop(hub, "alice", "cardio")
        stop(hub, "bob", "onco")
        assert leftovers(hub.site) == {"netns": [], "links": [], "nft_tables": [], "cgroups": []}
    finally:
        found = hub.teardown()
    assert not any(found.values()), found
    assert cullers_of(hub) == []


def test_the_culler_stops_idle_servers_and_keeps_busy_ones() -> None:
    hub = make_hub("c", cull_timeout=6, cull_every=2)
    try:
        hub.start()
        busy = spawn(hub, "alice", "cardio")
        spawn(hub, "dave", "onco")
        spawn(hub, "bob", "onco")
        idle = {("dave", "onco"), ("bob", "onco")}

        def running() -> set[tuple[str, str]]:
            return {(u, name) for u in ("alice", "bob", "dave")
                    for name in hub.api("GET", f"/users/{u}").json()["servers"]}  # fmt: skip

        # alice works in a kernel the whole time, as a researcher does; the others do nothing.
        deadline, culled_at = time.monotonic() + 90, None
        while time.monotonic() < deadline:
            assert busy.run("print(1 + 1)").strip() == "2"
            now = running()
            assert ("alice", "cardio") in now, "a busy server was culled"
            if not now & idle:
                culled_at = culled_at or time.monotonic()
                if time.monotonic() - culled_at > 3 * 6:  # three timeouts more, still busy
                    break
            time.sleep(1)
        else:
            raise AssertionError(f"idle servers still running after 90 s: {running() & idle}")
        assert hub.api("GET", "/users/alice").json()["servers"]["cardio"]["ready"]
        # Culling is a normal stop: the idle sandboxes and their resources are gone.
        assert len(leftovers(hub.site)["netns"]) == 1
        stop(hub, "alice", "cardio")
    finally:
        found = hub.teardown()
    assert not any(found.values()), found
