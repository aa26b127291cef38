"""Spawn-to-ready latency: sandboxed workspaces against JupyterHub's SimpleLocalProcessSpawner.

Both run behind the same hub configuration and proxy in the same run; only the spawner
differs. Spawn-to-ready is the time from the REST request that starts a server until the hub
reports it ready (the request returns 201 when the server is up within the hub's
slow_spawn_timeout, else it is polled every 10 ms). The sandboxed hub runs as `make up` does,
with the project's S3 bucket and credential (applied at the project's first spawn) and its
audit journal.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

from cloisonne.backends.sandbox.cgroups import CgroupLayout, SandboxCgroup
from cloisonne.platform.demo import make_demo_datasets
from cloisonne.platform.localhub import LocalHub

HERE = Path(__file__).parent
USERS = ["u1", "u2", "u3", "u4", "u5"]
SEQUENTIAL = 10
TITLE = "Workspace spawn-to-ready latency (issue 2)"


def _hub(spawner: str, prefix: str, subnet: str, ports: tuple[int, int, int]) -> LocalHub:
    state = Path(tempfile.mkdtemp(prefix=f"cloisonne-bench-{spawner}-"))
    make_demo_datasets(state / "datasets")
    hub = LocalHub(
        state=state, projects_file=HERE / "projects.yaml", port=ports[0], hub_port=ports[1],
        proxy_api_port=ports[2], subnet=subnet, prefix=prefix, spawner=spawner,
    )  # fmt: skip
    hub.write_users({u: "x" for u in USERS})
    return hub


def _spawn(hub: LocalHub, user: str) -> float:
    path = f"/users/{user}/servers/bench"
    t0 = time.perf_counter()
    r = hub.api("POST", path)
    if r.status_code == 202:
        while not hub.api("GET", f"/users/{user}").json()["servers"]["bench"].get("ready"):
            time.sleep(0.01)
    elif r.status_code != 201:
        raise RuntimeError(f"spawn failed: {r.status_code} {r.text}\n{hub.log_tail()}")
    return time.perf_counter() - t0


def _stop(hub: LocalHub, user: str) -> None:
    hub.api("DELETE", f"/users/{user}/servers/bench")
    while "bench" in hub.api("GET", f"/users/{user}").json()["servers"]:
        time.sleep(0.05)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def measure(hub: LocalHub) -> dict[str, list[float] | float]:
    hub.start()
    try:
        _spawn(hub, "u1")  # warm-up: first imports fill the page cache
        _stop(hub, "u1")
        sequential = []
        for _ in range(SEQUENTIAL):
            sequential.append(_spawn(hub, "u1"))
            _stop(hub, "u1")
        concurrent: list[float] = []
        threads = [
            threading.Thread(target=lambda u=u: concurrent.append(_spawn(hub, u))) for u in USERS
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        idle_mib = 0.0
        if hub.spawner == "sandbox":
            time.sleep(5)  # idle: no kernel, no browser
            idle_mib = _idle_rss_mib(hub, "u1")
        for u in USERS:
            _stop(hub, u)
        return {"sequential": sequential, "concurrent": concurrent, "idle_mib": idle_mib}
    finally:
        hub.teardown()


def _idle_rss_mib(hub: LocalHub, user: str) -> float:
    netns = hub.site.slot(hub.spawner_id(user, "bench")).netns
    cgroup = SandboxCgroup(CgroupLayout.detect(), netns)
    rss_kib = 0
    for pid in cgroup.pids():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss_kib += int(line.split()[1])
    return rss_kib / 1024


def run() -> list[dict]:
    sandbox = measure(_hub("sandbox", "clb", "10.248.0.0/16", (18100, 18101, 18102)))
    simple = measure(_hub("simple", "clb", "10.248.0.0/16", (18100, 18101, 18102)))
    rows = []
    for mode, label, target in (
        ("sequential", "10 sequential", 2.0),
        ("concurrent", "5 concurrent", None),
    ):
        for stat, fn in (("p50", statistics.median), ("p95", lambda v: _percentile(v, 0.95))):
            value = fn(sandbox[mode])  # type: ignore[arg-type]
            base = fn(simple[mode])  # type: ignore[arg-type]
            ratio = value / base
            if stat == "p50":
                goal = "ratio <= 1.10" + (f" and <= {target:.1f} s" if target else "")
                met = ratio <= 1.10 and (target is None or value <= target)
            else:
                goal, met = "", None
            rows.append({
                "name": f"spawn-to-ready {stat}, {label} (sandboxed)",
                "value": round(value, 3), "unit": "s",
                "baseline": "JupyterHub SimpleLocalProcessSpawner, no isolation, same hub",
                "baseline_value": round(base, 3), "ratio": round(ratio, 3),
                "target": goal, "met": met,
            })  # fmt: skip
    rows.append({
        "name": "idle workspace memory (RSS of all sandbox processes, no kernel)",
        "value": round(float(sandbox["idle_mib"]), 1), "unit": "MiB",
        "baseline": "", "baseline_value": None, "ratio": None, "target": "", "met": None,
    })  # fmt: skip
    return rows
