"""Incident response: suspend to last workspace stopped, and removal at the provider to access
lost (issue 16.7), on one hub with the real provider, watcher and sandboxes.

Suspend: two running workspaces of one project; `cloisonne project suspend` is timed from the
command's start to the moment the hub lists neither server. Baseline, measured in the same run on
the same hub: stopping the same two workspaces with two plain REST `DELETE`s (what the suspension
itself must at least cost). Target: <= 5 s.

Removal: a signed-in member with a running workspace and an API token is removed from the
project at the embedded provider; timed until the token is refused. Baseline: the configured
check interval (the wait the design allows); target: <= interval + 5 s. Median of 3 rounds.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from cloisonne.platform.idp import set_groups  # noqa: E402

from tests.integration.conftest import PASSWORDS, make_hub  # noqa: E402
from tests.integration.oidc_login import login  # noqa: E402
from tests.integration.workspace import spawn  # noqa: E402

TITLE = "Incident response: suspension and removal at the provider (issue 16)"
ROUNDS = 3
MEMBERSHIP_INTERVAL = 5.0
PROJECTS = HERE.parent / "tests" / "integration" / "projects-governance.yaml"


def gone(hub, pairs: list[tuple[str, str]], timeout: float = 60) -> float:  # noqa: ANN001
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if all(s not in hub.api("GET", f"/users/{u}").json()["servers"] for u, s in pairs):
            return time.perf_counter()
        time.sleep(0.05)
    raise RuntimeError(f"{pairs} still running after {timeout} s")


def measure() -> tuple[list[float], list[float], list[float]]:
    env = {"CLOISONNE_LIFECYCLE_INTERVAL": "1",
           "CLOISONNE_MEMBERSHIP_INTERVAL": str(MEMBERSHIP_INTERVAL)}  # fmt: skip
    hub = make_hub("b", projects_file=PROJECTS, extra_env=env)
    pairs = [("alice", "cardio"), ("bob", "cardio")]
    plain, suspend, removal = [], [], []
    try:
        hub.start()
        props = hub.api("GET", "/groups/cardio").json()["properties"]
        for _ in range(ROUNDS):
            for u, s in pairs:
                spawn(hub, u, s)
            t0 = time.perf_counter()
            for u, s in pairs:
                hub.api("DELETE", f"/users/{u}/servers/{s}")
            plain.append(gone(hub, pairs) - t0)

            for u, s in pairs:
                spawn(hub, u, s)
            t0 = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "cloisonne.platform.cli", "project", "suspend", "cardio",
                 "--why", "bench", "--by", "bench"], env=hub.env(), capture_output=True,
                text=True, timeout=120,
            )  # fmt: skip
            if done.returncode:
                raise RuntimeError(done.stderr)
            suspend.append(gone(hub, pairs) - t0)
            hub.api("PUT", "/groups/cardio/properties", json=props)  # resume

        idp = hub.state / "idp"
        for _ in range(ROUNDS):
            if not login(hub, "bob", PASSWORDS["bob"]).ok:
                raise RuntimeError("login failed")
            spawn(hub, "bob", "cardio")
            token = hub.api("POST", "/users/bob/tokens", json={"note": "bench"}).json()["token"]
            set_groups(idp, "bob", ["project-onco"])
            t0 = time.perf_counter()
            while hub.api("GET", "/user", token=token).ok:
                if time.perf_counter() - t0 > MEMBERSHIP_INTERVAL + 60:
                    raise RuntimeError("token never revoked")
                time.sleep(0.05)
            removal.append(time.perf_counter() - t0)
            set_groups(idp, "bob", ["project-cardio", "project-onco"])
            hub.api("POST", "/groups/cardio/users", json={"users": ["bob"]})
            hub.api("DELETE", "/users/bob/servers/cardio")
            gone(hub, [("bob", "cardio")])
    finally:
        hub.teardown()
    return plain, suspend, removal


def run() -> list[dict]:
    plain, suspend, removal = measure()
    base, value = statistics.median(plain), statistics.median(suspend)
    lost = statistics.median(removal)
    return [
        {"name": f"suspend -> last of 2 workspaces stopped (median of {ROUNDS})",
         "value": round(value, 3), "unit": "s", "baseline": "2 plain REST stops",
         "baseline_value": round(base, 3), "ratio": round(value / base, 3),
         "target": "<= 5 s", "met": value <= 5},
        {"name": f"removal at the provider -> token refused (median of {ROUNDS})",
         "value": round(lost, 3), "unit": "s", "baseline": "check interval",
         "baseline_value": MEMBERSHIP_INTERVAL, "ratio": round(lost / MEMBERSHIP_INTERVAL, 3),
         "target": f"<= {MEMBERSHIP_INTERVAL + 5:g} s (interval + 5 s)",
         "met": lost <= MEMBERSHIP_INTERVAL + 5},
    ]  # fmt: skip
