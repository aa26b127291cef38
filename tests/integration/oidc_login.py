"""Log in through the hub and the OIDC provider over plain HTTP, as a browser does."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from html import unescape

import requests
from cloisonne.platform.localhub import LocalHub


@dataclass
class LoginResult:
    session: requests.Session
    response: requests.Response  # the last page
    seconds: float

    @property
    def ok(self) -> bool:
        return (
            self.response.ok
            and "/hub/" in self.response.url
            and "oauth_callback" not in (self.response.url)
        )


def login(hub: LocalHub, user: str, password: str) -> LoginResult:
    """Hub /hub/login -> provider form -> POST credentials -> consent (automatic) -> hub."""
    s = requests.Session()
    t0 = time.perf_counter()
    form = s.get(f"{hub.url}/hub/login?next=/hub/home", timeout=30)
    m = re.search(r'action="([^"]+/login)"', form.text)
    assert m, f"no login form at {form.url}: {form.status_code} {form.text[:300]}"
    action = unescape(m.group(1))
    base = form.url.split("/interaction/")[0]
    r = s.post(base + action, data={"username": user, "password": password}, timeout=30)
    return LoginResult(s, r, time.perf_counter() - t0)
