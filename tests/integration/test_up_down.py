"""`cloisonne up` (what `make up` runs) and its two ways to stop: Ctrl-C and `cloisonne down`.

Both must stop hub, proxy and workspaces and remove every namespace, interface, nft table and
cgroup, whatever was running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from cloisonne.backends.sandbox.sweep import leftovers
from cloisonne.hub.config import REPO
from cloisonne.platform.localhub import LocalHub

from .conftest import allocate_site, free_port, free_store_port
from .oidc_login import login
from .workspace import spawn

CLOISONNE = str(Path(sys.executable).parent / "cloisonne")


def start_up(
    role: str, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, LocalHub, dict[str, str]]:
    site = allocate_site(role)
    state = Path(tempfile.mkdtemp(prefix=f"cloisonne-{site.prefix}-"))
    extra_env = {"CLOISONNE_S3_PORT": str(free_store_port()), **(extra_env or {})}
    hub = LocalHub(state=state, port=free_port(), hub_port=free_port(), proxy_api_port=free_port(),
                   subnet=site.subnet, prefix=site.prefix, extra_env=extra_env)  # fmt: skip
    env = hub.env()
    proc = subprocess.Popen([CLOISONNE, "up"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=REPO)  # fmt: skip
    banner = []
    deadline = time.monotonic() + 90
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        banner.append(line)
        if "Stop with Ctrl-C" in line or proc.poll() is not None:
            break
    text = "".join(banner)
    assert f"Cloisonné is running at {hub.url}/" in text, text
    assert "alice    alice-demo" in text and "researcher in cardio" in text
    # where the research data is: cardio's extract, and the S3 store on the hub's address
    assert "read-only at /data in the project's workspaces (now: cardio;" in text, text
    assert f"S3: http://{site.hub_ip}:{extra_env['CLOISONNE_S3_PORT']} (SeaweedFS, pid" in text
    # the package proxy, in the mode this machine allows, with the demo allow-list
    assert f"Packages: http://{site.hub_ip}:18340/<project>/simple/ (" in text, text
    assert "site allow-list: six tabulate" in text
    return proc, hub, env


def read_until(proc: subprocess.Popen, text: str, timeout: float) -> str:
    """The output of ``proc`` up to the line holding ``text`` (or its end, or the timeout)."""
    assert proc.stdout is not None
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        seen.append(proc.stdout.readline())
        if text in seen[-1]:
            break
    return "".join(seen)


def pids_from(state: Path) -> list[int]:
    pids = []
    for name in ("jupyterhub.pid", "proxy.pid", "idp/provider.pid", "s3/run/weed.pid",
                 "packages/proxy.pid"):  # fmt: skip
        try:
            pids.append(int((state / name).read_text()))
        except (OSError, ValueError):
            pass
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.parametrize("how", ["ctrl-c", "cloisonne down"])
def test_up_then_stop_removes_everything(how: str) -> None:
    proc, hub, env = start_up("u")
    try:
        # The demo platform works: demo data, demo login (through the embedded OIDC
        # provider), a sandboxed workspace.
        assert login(hub, "bob", "bob-demo").response.url.endswith("/hub/home")
        ws = spawn(hub, "alice", "cardio")
        assert "dispensings.csv" in ws.run("import os; print(os.listdir('/data/dcir-sample'))")
        # the demo extract beside the datasets, and the project's bucket over S3
        assert ws.run_json("""
            import json, os, s3fs
            fs = s3fs.S3FileSystem()
            fs.pipe(os.environ["CLOISONNE_S3_URL"] + "hello.txt", b"hi")
            print(json.dumps([os.environ["CLOISONNE_DATA_DIR"], os.path.exists("/data/extract/MANIFEST.json"),
                              fs.cat(os.environ["CLOISONNE_S3_URL"] + "hello.txt").decode()]))
        """) == ["/data/extract", True, "hi"]  # fmt: skip
        running = pids_from(hub.state)
        assert len(running) == 5 and leftovers(hub.site)["netns"]
        if how == "ctrl-c":
            proc.send_signal(signal.SIGINT)
        else:
            # A hub that dies under `up` is started again and its workspaces are kept; `down`
            # then still stops everything (it asks `up`, which would otherwise restart it).
            proxy_pid = int((hub.state / "packages" / "proxy.pid").read_text())
            os.kill(proxy_pid, signal.SIGKILL)
            assert "package proxy had exited" in read_until(proc, "package proxy had exited", 30)
            assert int((hub.state / "packages" / "proxy.pid").read_text()) != proxy_pid
            hub_pid = int((hub.state / "jupyterhub.pid").read_text())
            os.kill(hub_pid, signal.SIGKILL)
            assert "The hub is back" in read_until(proc, "The hub is back", 90)
            assert int((hub.state / "jupyterhub.pid").read_text()) != hub_pid
            assert "hi" in ws.run("print('hi')"), "the workspace survived the hub's death"
            assert hub.api("GET", "/users/alice").json()["servers"]["cardio"]["ready"]
            down = subprocess.run([CLOISONNE, "down"], env=env, capture_output=True, text=True,
                                  timeout=120)  # fmt: skip
            assert down.returncode == 0, down.stderr
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
        assert "Stopped" in out
        assert leftovers(hub.site) == {"netns": [], "links": [], "nft_tables": [], "cgroups": []}
        assert not any(alive(pid) for pid in running)
        assert hub.site.hub_link not in subprocess.run(["ip", "link"], capture_output=True,
                                                        text=True).stdout  # fmt: skip
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        hub.teardown()
