"""Access gates at login: the identity provider must vouch for a second factor and, where a
site requires it, for current training or accreditation (SATRE 3.2.04, 1.5.01, 1.6.04).

Pure: the authenticator hands in the ID token's claims, the userinfo claims and the user's
groups; the answer is the message the refused user sees, naming what is missing.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Iterable, Mapping
from typing import Any


def id_token_claims(id_token: str | None) -> dict[str, Any]:
    """The payload of an ID token received straight from the token endpoint (OIDC Core 3.1.3.7:
    the TLS channel to the provider authenticates it), or {} if there is none."""
    if not id_token or id_token.count(".") != 2:
        return {}
    payload = id_token.split(".")[1]
    try:
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, UnicodeDecodeError):
        return {}


def mfa_missing(
    claims: Mapping[str, Any], acr_values: Iterable[str], amr_values: Iterable[str]
) -> str:
    """'' if the login meets the site's MFA rule: its ``acr`` is one of ``acr_values`` (when
    given) and its ``amr`` holds at least one of ``amr_values`` (when given)."""
    acr_values, amr_values = list(acr_values), list(amr_values)
    acr = claims.get("acr")
    amr = claims.get("amr") or []
    if acr_values and acr not in acr_values:
        return (f"a sign-in with a second factor (your provider reported assurance "
                f"{acr or 'none'}; this hub requires {' or '.join(acr_values)})")  # fmt: skip
    if amr_values and not set(amr) & set(amr_values):
        return (f"a second factor at sign-in (methods used: {', '.join(amr) or 'none'}; this "
                f"hub requires one of {', '.join(amr_values)})")  # fmt: skip
    return ""


def training_missing(
    userinfo: Mapping[str, Any], groups: Iterable[str], *, claim: str, group: str,
    today: datetime.date,
) -> str:  # fmt: skip
    """'' if the user's training or accreditation is current: an expiry date claim not
    passed, or membership of the training group (whichever the site configured)."""
    if group and group in set(groups):
        return ""
    if claim:
        value = userinfo.get(claim)
        if not value:
            return f"a current training or accreditation record (claim '{claim}' is absent)"
        try:
            expires = datetime.date.fromisoformat(str(value)[:10])
        except ValueError:
            return f"a current training or accreditation record ('{claim}' is not a date)"
        if expires < today:
            return f"a current training or accreditation record (it expired on {expires})"
        return ""
    if group:
        return f"a current training or accreditation record (group '{group}')"
    return ""
