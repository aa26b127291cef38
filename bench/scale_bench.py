"""Scale on one machine: a hundred workspaces of one project, spawned in waves of ten.

A project of 100 generated members; waves of 10 concurrent spawns through the hub's REST API
until all 100 run. Reported: spawn-to-ready p50/p95 of the wave started with 0, 50 and 90
already running (the baseline is the wave at 0, measured in the same run: the cost of a spawn
must not grow with the number running), failures, memory per idle workspace, proxy latency of
`api/status` over every running workspace, a hub restart with 100 running (kill -9, then a
clean stop and start: time until every workspace is re-attached and answers through the
proxy), and the time to stop all 100.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from cloisonne.backends.sandbox.cgroups import CgroupLayout, SandboxCgroup
from cloisonne.backends.sandbox.sweep import leftovers
from cloisonne.platform.demo import make_demo_datasets
from cloisonne.platform.localhub import LocalHub

TITLE = "Scale: 100 workspaces on one machine (issue 19)"
# CLOISONNE_BENCH_SCALE_N: fewer members for a quick trial run (the figures are for 100).
N = int(os.environ.get("CLOISONNE_BENCH_SCALE_N", "100"))
MEMBERS = [f"s{i:03d}" for i in range(1, N + 1)]
WAVE = 10
LEVELS = tuple(dict.fromkeys((0, N // 2 // WAVE * WAVE, N - WAVE)))
PROJECT = "scale"


def _hub() -> LocalHub:
    state = Path(tempfile.mkdtemp(prefix="cloisonne-bench-scale-"))
    make_demo_datasets(state / "datasets")
    projects = state / "projects.yaml"
    projects.write_text(
        "projects:\n"
        f"  - id: {PROJECT}\n    title: Scale benchmark\n"
        f"    members: [{', '.join(MEMBERS)}]\n"
        "    datasets: [dcir-sample]\n"
        "    limits: {cpu: 1.0, memory: 1G, pids: 256}\n"
    )
    hub = LocalHub(state=state, projects_file=projects, port=18200, hub_port=18201,
                   proxy_api_port=18202, subnet="10.249.0.0/16", prefix="cls")  # fmt: skip
    hub.write_users({u: "x" for u in MEMBERS})
    return hub


def _spawn(hub: LocalHub, user: str) -> float | None:
    """Seconds to ready, or None when the spawn failed."""
    t0 = time.perf_counter()
    r = hub.api("POST", f"/users/{user}/servers/{PROJECT}")
    if r.status_code not in (201, 202):
        return None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        server = hub.api("GET", f"/users/{user}").json()["servers"].get(PROJECT) or {}
        if server.get("ready"):
            return time.perf_counter() - t0
        if not server.get("pending"):
            return None
        time.sleep(0.05)
    return None


def _wave(hub: LocalHub, users: list[str]) -> list[float | None]:
    with ThreadPoolExecutor(len(users)) as pool:
        return list(pool.map(lambda u: _spawn(hub, u), users))


def _idle_mib(hub: LocalHub) -> tuple[float, float]:
    """Mean (PSS, RSS) in MiB of one idle workspace's processes. PSS is what each added
    workspace costs the machine (shared library pages counted once across all of them); RSS
    counts them again in every workspace."""
    layout, pss_kib, rss_kib = CgroupLayout.detect(), 0, 0
    for user in MEMBERS:
        netns = hub.site.slot(hub.spawner_id(user, PROJECT)).netns
        for pid in SandboxCgroup(layout, netns).pids():
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
            except OSError:
                continue
            pss_kib += _kib(rollup, "Pss:")
            rss_kib += _kib(rollup, "Rss:")
    return pss_kib / 1024 / len(MEMBERS), rss_kib / 1024 / len(MEMBERS)


def _kib(lines: list[str], key: str) -> int:
    return next((int(x.split()[1]) for x in lines if x.startswith(key)), 0)


def _reachable(hub: LocalHub, tokens: dict[str, str]) -> list[float | None]:
    """Latency of api/status through the proxy for every workspace (None: not answering)."""

    def one(user: str) -> float | None:
        t0 = time.perf_counter()
        try:
            r = requests.get(f"{hub.url}/user/{user}/{PROJECT}/api/status", timeout=10,
                             headers={"Authorization": f"token {tokens[user]}"})  # fmt: skip
        except requests.RequestException:
            return None
        return time.perf_counter() - t0 if r.status_code == 200 else None

    with ThreadPoolExecutor(10) as pool:
        return list(pool.map(one, MEMBERS))


def _until_all_reachable(hub: LocalHub, tokens: dict[str, str], timeout: float = 120) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if all(x is not None for x in _reachable(hub, tokens)):
            return time.perf_counter() - t0
        time.sleep(0.5)
    return float("inf")


def _stop_all(hub: LocalHub) -> float:
    """`cloisonne down`'s way: every server stopped through the hub API, until the hub reports
    none active and no namespace of this site is left."""
    t0 = time.perf_counter()
    hub.stop_all_servers()
    while any(hub.site.owns_netns(n) for n in os.listdir("/run/netns")):
        time.sleep(0.1)
    return time.perf_counter() - t0


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure() -> dict:
    hub = _hub()
    hub.start(timeout=120)
    try:
        waves: dict[int, list[float | None]] = {}
        for start in range(0, len(MEMBERS), WAVE):
            waves[start] = _wave(hub, MEMBERS[start : start + WAVE])
            done = [x for x in waves[start] if x is not None] or [0.0]
            print(f"   wave at {start} running: p50 {statistics.median(done):.2f} s", flush=True)
        time.sleep(10)  # idle: no kernel, no browser
        idle = _idle_mib(hub)
        tokens = {}
        for user in MEMBERS:
            r = hub.api("POST", f"/users/{user}/tokens", json={"note": "bench", "expires_in": 3600})
            tokens[user] = r.json()["token"]
        latency = _reachable(hub, tokens)
        hub.kill9()
        t0 = time.perf_counter()
        hub.start(timeout=120)
        after_kill = time.perf_counter() - t0 + _until_all_reachable(hub, tokens)
        hub.stop(stop_servers=False)
        t0 = time.perf_counter()
        hub.start(timeout=120)
        after_restart = time.perf_counter() - t0 + _until_all_reachable(hub, tokens)
        running_netns = len(leftovers(hub.site)["netns"])
        stop_all = _stop_all(hub)
        return {"waves": waves, "idle_mib": idle, "latency": latency, "after_kill": after_kill,
                "after_restart": after_restart, "netns_after_restarts": running_netns,
                "stop_all": stop_all}  # fmt: skip
    finally:
        hub.teardown()


def _row(name: str, value: float | int, unit: str, target: str = "", met: bool | None = None,
         baseline: str = "", baseline_value: float | None = None) -> dict:  # fmt: skip
    ratio = round(value / baseline_value, 3) if baseline_value else None
    return {"name": name, "value": round(value, 3), "unit": unit, "baseline": baseline,
            "baseline_value": None if baseline_value is None else round(baseline_value, 3),
            "ratio": ratio, "target": target, "met": met}  # fmt: skip


def run() -> list[dict]:
    m = measure()
    waves = m["waves"]
    ok = {level: [x for x in waves[level] if x is not None] for level in waves}
    failures = sum(1 for level in waves for x in waves[level] if x is None)
    rows = []
    base = {"p50": statistics.median(ok[0]), "p95": _p(ok[0], 0.95)}
    for level in LEVELS:
        for stat, value in (("p50", statistics.median(ok[level])), ("p95", _p(ok[level], 0.95))):
            at_90 = level == LEVELS[-1]
            rows.append(_row(
                f"spawn-to-ready {stat}, wave of {WAVE} with {level} running", value, "s",
                target="ratio <= 1.3" if at_90 else "",
                met=(value / base[stat] <= 1.3) if at_90 else None,
                baseline=f"the same wave with 0 running ({stat})", baseline_value=base[stat],
            ))  # fmt: skip
    rows.append(_row(f"failed spawns (of {N})", failures, "", "0", failures == 0))
    pss, rss = m["idle_mib"]
    rows.append(_row("memory per idle workspace (PSS, no kernel)", pss, "MiB", "<= 100",
                     pss <= 100))  # fmt: skip
    rows.append(_row("memory per idle workspace (RSS, shared pages counted in each)", rss,
                     "MiB"))  # fmt: skip
    answered = [x for x in m["latency"] if x is not None]
    rows.append(_row(f"proxy latency api/status p50, all {N} running",
                     1000 * statistics.median(answered), "ms"))  # fmt: skip
    rows.append(_row("workspaces answering through the proxy", len(answered), "", str(N),
                     len(answered) == N))  # fmt: skip
    for key, label in (("after_kill", "hub kill -9"), ("after_restart", "clean hub restart")):
        rows.append(_row(f"{label} with {N} running: all re-attached and reachable",
                         m[key], "s", "<= 30", m[key] <= 30))  # fmt: skip
    kept = m["netns_after_restarts"]
    rows.append(_row("sandboxes after both restarts (none orphaned, none lost)", kept, "",
                     str(N), kept == N))  # fmt: skip
    rows.append(_row(f"stop all {N}", m["stop_all"], "s", "<= 20", m["stop_all"] <= 20))
    return rows
