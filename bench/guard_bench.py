"""Cost of the workspace guard on contents reads.

Three hubs with the same configuration run at once, each with one sandboxed workspace: the
guard appending to its audit journal (the sandbox backend's default: each read checked, hashed
and written to the journal before it is served; the service forwards it into the chain), the
guard appending over HTTP to the cloisonne service (the Kubernetes path: a round trip per
read), and the guard switched off. Measured: GET /api/contents/<1 KiB text file> through each
hub's proxy with the user's token, 400 rounds after 30 warm-up rounds; a round reads once from
each workspace in a rotating order, so background load on the machine hits all three alike.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import requests
from cloisonne.platform.demo import make_demo_datasets
from cloisonne.platform.localhub import LocalHub

HERE = Path(__file__).parent
TITLE = "Workspace guard: contents read latency (issue 3)"
N, WARMUP = 400, 30
CONFIGS = {  # name: (port base, environment)
    "journal": (18110, {"CLOISONNE_GUARD": "on", "CLOISONNE_AUDIT_JOURNAL": "on"}),
    "http": (18120, {"CLOISONNE_GUARD": "on", "CLOISONNE_AUDIT_JOURNAL": "off"}),
    "off": (18130, {"CLOISONNE_GUARD": "off"}),
}


def _start(name: str, base: int, env: dict[str, str]) -> tuple[LocalHub, requests.Session, str]:
    state = Path(tempfile.mkdtemp(prefix=f"cloisonne-bench-guard-{name}-"))
    make_demo_datasets(state / "datasets")
    third = 248 + (base - 18110) // 10  # 10.248/16, 10.249/16, 10.250/16
    hub = LocalHub(
        state=state, projects_file=HERE / "projects.yaml", port=base, hub_port=base + 1,
        proxy_api_port=base + 2, subnet=f"10.{third}.0.0/16", prefix=f"clb{name[0]}",
        extra_env={**env, "CLOISONNE_SERVICE_PORT": str(base + 3), "CLOISONNE_S3": "off",
                   "CLOISONNE_EGRESS_PROBES": f"10.{third}.0.1:9"},
    )  # fmt: skip
    hub.write_users({"u1": "x"})
    hub.start()
    r = hub.api("POST", "/users/u1/servers/bench")
    assert r.status_code == 201, r.text
    token = hub.api("POST", "/users/u1/tokens", json={}).json()["token"]
    session = requests.Session()
    session.headers["Authorization"] = f"token {token}"
    url = f"{hub.url}/user/u1/bench/api/contents/notes.txt"
    note = {"type": "file", "format": "text", "content": "x" * 1024}
    session.put(url, json=note).raise_for_status()
    return hub, session, url


def measure() -> dict[str, list[float]]:
    running = {}
    try:
        for name, (base, env) in CONFIGS.items():
            running[name] = _start(name, base, env)
        times: dict[str, list[float]] = {name: [] for name in CONFIGS}
        names = list(CONFIGS)
        for i in range(WARMUP + N):
            for name in names[i % 3 :] + names[: i % 3]:
                _, session, url = running[name]
                t0 = time.perf_counter()
                session.get(url).raise_for_status()
                if i >= WARMUP:
                    times[name].append(time.perf_counter() - t0)
        return times
    finally:
        for hub, _, _ in running.values():
            hub.teardown()


def _p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def run() -> list[dict]:
    times = measure()
    rows = []
    for config, label, target in (
        ("journal", "with guard, audit journal (sandbox backend)", 1.10),
        ("http", "with guard, HTTP append to the service (Kubernetes path)", None),
    ):
        for stat, fn in (("p50", statistics.median), ("p95", _p95)):
            value, base = fn(times[config]) * 1000, fn(times["off"]) * 1000
            with_target = target is not None and stat == "p50"
            rows.append({
                "name": f"contents GET {stat}, 1 KiB text file, {label}",
                "value": round(value, 2), "unit": "ms",
                "baseline": "same workspace configuration, guard off (interleaved)",
                "baseline_value": round(base, 2), "ratio": round(value / base, 3),
                "target": f"ratio <= {target:.2f}" if with_target else "",
                "met": (value / base <= target) if with_target else None,
            })  # fmt: skip
    return rows
