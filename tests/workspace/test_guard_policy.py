"""The guard's pure decisions, the service's caller identity and outflow budget."""

from __future__ import annotations

import re

import pytest
from cloisonne.service.identity import caller_from_model
from cloisonne.service.outflow import OutflowBudget
from cloisonne.workspace.egress import parse_probes
from cloisonne.workspace.guard.policy import GuardSettings, decide_read, decide_upload
from cloisonne.workspace.guard.routes import CLOSED_ROUTES

S = GuardSettings(max_text_bytes=1000, max_image_bytes=100, max_upload_bytes=5000)


@pytest.mark.parametrize(
    ("route", "path", "fmt", "size", "allowed"),
    [
        ("contents", "notes.txt", "text", 1000, True),
        ("contents", "notes.txt", "text", 1001, False),
        ("contents", "a.ipynb", None, 999, True),
        ("contents", "blob.bin", "base64", 10, False),
        ("contents", "plot.png", "base64", 100, True),
        ("contents", "plot.png", "base64", 101, False),
        ("files", "plot.PNG", None, 50, True),
        ("files", "notes.txt", None, 5, False),
        ("files", "a.ipynb", None, 5, False),
    ],
)
def test_read_decisions(route: str, path: str, fmt: str | None, size: int, allowed: bool) -> None:
    decision = decide_read(route, path, fmt, size, S)
    assert decision.allowed is allowed and decision.reason
    if route == "files" and not allowed:
        assert "Request export" in decision.reason


def test_upload_cap() -> None:
    assert decide_upload("x.csv", 5000, S).allowed
    refused = decide_upload("x.csv", 5001, S)
    assert not refused.allowed and refused.status == 413


@pytest.mark.parametrize(
    ("method", "path", "closed"),
    [
        ("GET", "nbconvert/html/a.ipynb", True),
        ("POST", "nbconvert/html", True),
        ("GET", "api/nbconvert", True),
        ("GET", "view/a.txt", True),
        ("POST", "api/events", True),
        ("GET", "api/events/subscribe", False),
        ("POST", "lab/api/plugins", True),
        ("GET", "lab/api/plugins", False),
        ("GET", "kernelspecs/python3/kernel.json", True),
        ("GET", "kernelspecs/python3/logo-64x64.png", False),
        ("GET", "kernelspecs/python3/logo-svg.svg", False),
        ("GET", "kernelspecs/python3/logo-x.csv", True),
        ("GET", "api/contents/a.txt", False),
    ],
)
def test_closed_route_table(method: str, path: str, closed: bool) -> None:
    hit = any((m in ("*", method)) and re.fullmatch(p, path) for m, p, _ in CLOSED_ROUTES)
    assert hit is closed


def test_caller_identity_comes_from_server_scopes() -> None:
    server = {"kind": "user", "name": "alice", "admin": False,
              "scopes": ["access:servers!server=alice/cardio", "users:activity!user=alice"]}  # fmt: skip
    assert caller_from_model(server).project == "cardio"
    personal = {"kind": "user", "name": "alice", "scopes": ["access:servers!user=alice"]}
    assert caller_from_model(personal).project is None
    forged = {"kind": "user", "name": "alice", "scopes": ["access:servers!server=bob/onco"]}
    assert caller_from_model(forged).project is None
    two = {
        "kind": "user",
        "name": "a",
        "scopes": ["access:servers!server=a/x", "access:servers!server=a/y"],
    }
    assert caller_from_model(two).project is None
    assert caller_from_model({"kind": "user", "name": "root", "admin": True, "scopes": []}).admin


def test_outflow_budget_alerts_once_per_project_and_day() -> None:
    budget = OutflowBudget(100)
    assert budget.add("p", 60, "2026-11-29") is None
    assert budget.add("p", 50, "2026-11-29") == 110
    assert budget.add("p", 50, "2026-11-29") is None  # once
    assert budget.add("q", 99, "2026-11-29") is None
    assert budget.add("p", 101, "2026-11-30") == 101  # a new day


def test_probe_list() -> None:
    assert parse_probes("1.1.1.1:443, 10.0.0.1:9") == [("1.1.1.1", 443), ("10.0.0.1", 9)]
