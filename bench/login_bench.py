"""Login round-trip through the embedded OpenID Connect provider (50 sequential logins).

One login is what a browser does, over HTTP, with a fresh cookie jar: GET /hub/login, the
hub's redirect to the provider (authorization code + PKCE), the provider's sign-in form, POST
of the credentials (scrypt check), automatic consent, the redirect back to the hub's OAuth
callback (code exchange, userinfo, groups claim -> groups), the hub's home page. A second row
measures the same round trip when the provider already has a session (single sign-on: no
form, no password check), which isolates the cost of the OAuth exchange and the hub.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
from cloisonne.platform.demo import make_demo_datasets
from cloisonne.platform.localhub import LocalHub

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from tests.integration.oidc_login import login  # noqa: E402

TITLE = "Login round-trip through the OIDC provider (issue 5)"
LOGINS = 50
USERS = ["u1", "u2", "u3", "u4", "u5"]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure() -> tuple[list[float], list[float]]:
    state = Path(tempfile.mkdtemp(prefix="cloisonne-bench-login-"))
    make_demo_datasets(state / "datasets")
    hub = LocalHub(state=state, projects_file=HERE / "projects.yaml", port=18110,
                   hub_port=18111, proxy_api_port=18112, idp_port=18113,
                   subnet="10.254.0.0/16", prefix="col",
                   extra_env={"CLOISONNE_S3": "off"})  # fmt: skip
    hub.write_users({u: f"{u}-pw" for u in USERS})
    full: list[float] = []
    sso: list[float] = []
    try:
        hub.start()
        login(hub, "u1", "u1-pw")  # warm-up
        for i in range(LOGINS):
            user = USERS[i % len(USERS)]
            result = login(hub, user, f"{user}-pw")
            if not result.ok:
                raise RuntimeError(f"login failed: {result.response.status_code}")
            full.append(result.seconds)
            # the provider's session only: sign in to the hub again without a password
            browser = requests.Session()
            for cookie in result.session.cookies:
                if cookie.name.startswith("_session"):
                    browser.cookies.set_cookie(cookie)
            t0 = time.perf_counter()
            r = browser.get(f"{hub.url}/hub/login?next=/hub/home", timeout=30)
            sso.append(time.perf_counter() - t0)
            if not r.url.endswith("/hub/home"):
                raise RuntimeError(f"single sign-on failed: {r.url}")
    finally:
        hub.teardown()
    return full, sso


def run() -> list[dict]:
    full, sso = measure()
    rows = []
    for label, values, target in (
        (f"login round-trip, {LOGINS} sequential, password form", full, 1.0),
        (f"login round-trip, {LOGINS} sequential, provider session (SSO)", sso, None),
    ):
        for stat, fn in (("p50", statistics.median), ("p95", lambda v: _percentile(v, 0.95))):
            value = fn(values)
            goal = f"p95 <= {target:.1f} s" if target and stat == "p95" else ""
            rows.append({
                "name": f"{label} {stat}", "value": round(value, 3), "unit": "s",
                "baseline": "", "baseline_value": None, "ratio": None, "target": goal,
                "met": (value <= target) if goal else None,
            })  # fmt: skip
    return rows
