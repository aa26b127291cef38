"""MFA and training gates at login, through the real hub and the embedded provider with a real
TOTP second factor (codes computed with pyotp, independently of the provider's own code)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape

import pyotp
import pytest
import requests
from cloisonne.platform.idp import set_totp, write_json
from cloisonne.platform.localhub import LocalHub

from .conftest import PASSWORDS, running_hub

SECRETS = {"alice": pyotp.random_base32(), "bob": pyotp.random_base32()}


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    env = {"CLOISONNE_OIDC_AMR": "otp,hwk", "CLOISONNE_TRAINING_CLAIM": "training_expires"}
    with running_hub("m", extra_env=env) as h:
        idp = h.state / "idp"
        for name, secret in SECRETS.items():
            set_totp(idp, name, secret)
        accounts = json.loads((idp / "accounts.json").read_text())
        accounts["users"]["alice"]["training_expires"] = "2099-12-31"
        accounts["users"]["bob"]["training_expires"] = "2020-01-31"
        accounts["users"]["carol"]["training_expires"] = "2099-12-31"
        write_json(idp / "accounts.json", accounts)
        yield h


def sign_in(hub: LocalHub, user: str, code: str | None = None) -> requests.Response:
    """Password form, then (if asked) the second-factor form; the last response."""
    s = requests.Session()
    form = s.get(f"{hub.url}/hub/login?next=/hub/home", timeout=30)
    action = unescape(re.search(r'action="([^"]+/login)"', form.text).group(1))
    base = form.url.split("/interaction/")[0]
    r = s.post(base + action, data={"username": user, "password": PASSWORDS[user]}, timeout=30)
    otp = re.search(r'action="([^"]+/otp)"', r.text)
    if otp and code is not None:
        r = s.post(base + unescape(otp.group(1)), data={"code": code}, timeout=30)
    return r


def message(r: requests.Response) -> str:
    """The error text of a hub page (without its markup)."""
    text = re.sub(r"(?s)<script.*?</script>|<[^>]+>", " ", r.text)
    return " ".join(unescape(text).split())


def test_totp_second_factor_and_current_training_let_alice_in(hub: LocalHub) -> None:
    r = sign_in(hub, "alice", pyotp.TOTP(SECRETS["alice"]).now())
    assert r.ok and r.url.endswith("/hub/home"), (r.status_code, message(r))


def test_a_wrong_or_replayed_code_is_refused_by_the_provider(hub: LocalHub) -> None:
    secret = pyotp.random_base32()
    set_totp(hub.state / "idp", "dave", secret)  # an account whose codes nothing used yet
    code = pyotp.TOTP(secret).now()
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    r = sign_in(hub, "dave", wrong)
    assert r.status_code == 401 and "Wrong or already used code" in r.text
    first = sign_in(hub, "dave", code)
    assert "/hub/" in first.url, "the provider accepted the right code"
    again = sign_in(hub, "dave", code)
    assert again.status_code == 401 and "Wrong or already used code" in again.text


def test_password_only_login_is_refused_with_a_page_naming_the_second_factor(
    hub: LocalHub,
) -> None:
    r = sign_in(hub, "carol")  # carol has no second factor at the provider
    assert r.status_code == 403, (r.status_code, r.url)
    assert "requires a second factor at sign-in" in unescape(r.text)
    assert "methods used: pwd" in unescape(r.text)


def test_expired_training_is_refused_with_its_date(hub: LocalHub) -> None:
    r = sign_in(hub, "bob", pyotp.TOTP(SECRETS["bob"]).now())
    assert r.status_code == 403
    assert "training or accreditation record (it expired on 2020-01-31)" in unescape(r.text)
