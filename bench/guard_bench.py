"""Cost of the workspace guard on contents reads.

The same hub configuration runs a sandboxed workspace twice in one run: with the guard (every
read checked, hashed and appended to the audit log through the cloisonne service before it is
served) and with the guard switched off. Measured: latency of GET /api/contents/<1 KiB text
file> through the proxy with the user's token, 300 requests after 20 warm-up requests.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import requests
from cloisonne.demo import make_demo_datasets
from cloisonne.localhub import LocalHub

HERE = Path(__file__).parent
TITLE = "Workspace guard: contents read latency (issue 3)"
N = 300


def _measure(guard: bool) -> list[float]:
    state = Path(tempfile.mkdtemp(prefix="cloisonne-bench-guard-"))
    make_demo_datasets(state / "datasets")
    hub = LocalHub(
        state=state, projects_file=HERE / "projects.yaml", port=18110, hub_port=18111,
        proxy_api_port=18112, subnet="10.248.0.0/16", prefix="clb",
        extra_env={"CLOISONNE_GUARD": "on" if guard else "off",
                   "CLOISONNE_EGRESS_PROBES": "10.248.0.1:9"},
    )  # fmt: skip
    hub.write_users({"u1": "x"})
    hub.start()
    try:
        r = hub.api("POST", "/users/u1/servers/bench")
        assert r.status_code == 201, r.text
        token = hub.api("POST", "/users/u1/tokens", json={}).json()["token"]
        session = requests.Session()
        session.headers["Authorization"] = f"token {token}"
        base = f"{hub.url}/user/u1/bench/api/contents/"
        note = {"type": "file", "format": "text", "content": "x" * 1024}
        session.put(base + "notes.txt", json=note).raise_for_status()
        times = []
        for i in range(20 + N):
            t0 = time.perf_counter()
            session.get(base + "notes.txt").raise_for_status()
            if i >= 20:
                times.append(time.perf_counter() - t0)
        return times
    finally:
        hub.teardown()


def run() -> list[dict]:
    guarded = _measure(True)
    plain = _measure(False)
    rows = []
    for stat, fn in (("p50", statistics.median),
                     ("p95", lambda v: sorted(v)[int(0.95 * (len(v) - 1))])):  # fmt: skip
        value, base = fn(guarded) * 1000, fn(plain) * 1000
        rows.append({
            "name": f"contents GET {stat}, 1 KiB text file, with guard + audit append",
            "value": round(value, 2), "unit": "ms",
            "baseline": "same workspace configuration, guard off",
            "baseline_value": round(base, 2), "ratio": round(value / base, 3),
            "target": "ratio <= 1.10" if stat == "p50" else "",
            "met": (value / base <= 1.10) if stat == "p50" else None,
        })  # fmt: skip
    return rows
