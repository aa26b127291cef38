"""Login gates: MFA claims (acr/amr) and a current training or accreditation."""

from __future__ import annotations

import base64
import datetime
import json

from cloisonne.core.access_gates import id_token_claims, mfa_missing, training_missing

TODAY = datetime.date(2026, 12, 7)


def token(claims: dict) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"e30.{body}.sig"


def test_id_token_payload_is_read() -> None:
    assert id_token_claims(token({"amr": ["pwd", "otp"]})) == {"amr": ["pwd", "otp"]}
    assert id_token_claims(None) == {} and id_token_claims("garbage") == {}


def test_mfa_rule_names_what_is_missing() -> None:
    pwd = {"acr": "urn:cloisonne:acr:pwd", "amr": ["pwd"]}
    mfa = {"acr": "urn:cloisonne:acr:mfa", "amr": ["pwd", "otp"]}
    assert mfa_missing(pwd, [], []) == ""
    assert "methods used: pwd" in mfa_missing(pwd, [], ["otp", "hwk"])
    assert mfa_missing(mfa, [], ["otp", "hwk"]) == ""
    assert "requires urn:cloisonne:acr:mfa" in mfa_missing(pwd, ["urn:cloisonne:acr:mfa"], [])
    assert "assurance none" in mfa_missing({}, ["x"], [])


def test_training_by_expiry_claim_or_group() -> None:
    def check(info: dict, groups: list, **kw: str) -> str:
        return training_missing(info, groups, claim=kw.get("claim", ""),
                                group=kw.get("group", ""), today=TODAY)  # fmt: skip

    assert check({}, []) == ""
    assert "expired on 2026-12-06" in check({"training_expires": "2026-12-06"}, [],
                                            claim="training_expires")  # fmt: skip
    assert check({"training_expires": "2026-12-07"}, [], claim="training_expires") == ""
    assert "is absent" in check({}, [], claim="training_expires")
    assert "not a date" in check({"training_expires": "soon"}, [], claim="training_expires")
    assert check({}, ["trained"], claim="training_expires", group="trained") == ""
    assert "group 'trained'" in check({}, ["staff"], group="trained")
