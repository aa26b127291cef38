"""The package proxy process with real pip: allowed files install, others are refused with the
message, every file served and every refusal is in the audit log (both modes)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import requests
from cloisonne.audit.store import AuditStore
from cloisonne.packages.wheelhouse import Wheelhouse

from .conftest import free_port, pip
from .wheels import make_sdist, make_wheel, write_simple_index

pytestmark = pytest.mark.server

GROUPS = {"cardio": {"packages": ["alpha", "beta<2"]}, "onco": {}}


@pytest.fixture
def dists(tmp_path: Path) -> list[Path]:
    out = tmp_path / "dists"
    return [
        make_wheel(out, "alpha", "1.0", requires=["beta"]),
        make_wheel(out, "beta", "1.0"),
        make_wheel(out, "beta", "2.0"),
        make_wheel(out, "gamma", "1.0"),
        make_wheel(out, "delta", "1.0", requires=["gamma"]),
        make_sdist(out, "epsilon", "1.0"),
    ]


def audit(db_url: str, type_: str) -> list:
    store = AuditStore(db_url, create=False)
    try:
        return [e for e in store.iter_events() if e.type == type_]
    finally:
        store.close()


def test_air_gapped_serves_the_wheelhouse_only_what_is_allowed(
    start_proxy, dists: list[Path], tmp_path: Path
) -> None:
    house = Wheelhouse(tmp_path / "packages" / "wheelhouse")
    for req in ("alpha==1.0", "beta", "gamma", "delta", "epsilon"):
        house.add(req, dists[0].parent)
    running = start_proxy(GROUPS, allow=["delta", "epsilon"])
    target = tmp_path / "target"
    url = running.url("cardio", "alice")

    ok = pip("install", "--index-url", url, "--target", str(target), "alpha")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert (target / "alpha").is_dir() and "beta 1.0" in (target / "beta/__init__.py").read_text()

    # a dependency off the list fails the install, with the reason
    dep = pip("install", "--index-url", url, "--target", str(tmp_path / "t2"), "delta")
    assert dep.returncode != 0
    assert "gamma is not on the package allow-list of project cardio" in dep.stderr
    assert "cloisonne packages allow cardio gamma" in dep.stderr
    # sdists are not served by default
    sdist = pip("install", "--index-url", url, "--target", str(tmp_path / "t3"), "epsilon")
    assert sdist.returncode != 0 and "only wheels are served" in sdist.stderr
    # another project's list does not apply; another project's credential does not work
    other = pip("install", "--index-url", running.url("onco", "bob"), "--target",
                str(tmp_path / "t4"), "alpha")  # fmt: skip
    assert other.returncode != 0 and "not on the package allow-list of project onco" in other.stderr
    base = f"http://127.0.0.1:{running.settings.port}"
    forged = requests.get(f"{base}/cardio/simple/alpha/", auth=("bob", "0" * 40), timeout=5)
    assert forged.status_code == 401
    # a file outside the range, asked for directly, is refused
    token = running.url("cardio", "alice").split(":")[2].split("@")[0]
    direct = requests.get(f"{base}/cardio/files/beta/beta-2.0-py3-none-any.whl",
                          auth=("alice", token), timeout=5)  # fmt: skip
    assert direct.status_code == 403 and "outside the range" in direct.text

    served = audit(running.settings.db_url, "packages.served")
    by_file = {e.fields["file"]: e for e in served}
    alpha = by_file["alpha-1.0-py3-none-any.whl"]
    assert (alpha.user, alpha.project, alpha.fields["version"]) == ("alice", "cardio", "1.0")
    assert alpha.fields["sha256"] == hashlib.sha256(dists[0].read_bytes()).hexdigest()
    assert alpha.fields["source"] == "wheelhouse"
    refused = audit(running.settings.db_url, "packages.refused")
    assert {(e.user, e.project, e.fields["package"]) for e in refused} >= {
        ("alice", "cardio", "gamma"), ("bob", "onco", "alpha"), ("alice", "cardio", "beta")}  # fmt: skip


@pytest.fixture
def upstream(dists: list[Path], tmp_path: Path) -> Iterator[str]:
    root = write_simple_index(dists, tmp_path / "upstream")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_connected_fetches_from_the_upstream_and_caches(
    start_proxy, upstream: str, tmp_path: Path
) -> None:
    running = start_proxy(GROUPS, mode="connected", upstream=upstream)
    url = running.url("cardio", "carol")
    ok = pip("install", "--index-url", url, "--target", str(tmp_path / "t"), "alpha")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    cached = list((tmp_path / "packages" / "cache").rglob("*.whl"))
    assert {p.name for p in cached} == {"alpha-1.0-py3-none-any.whl", "beta-1.0-py3-none-any.whl"}
    refused = pip("install", "--index-url", url, "--target", str(tmp_path / "t2"), "gamma")
    assert "gamma is not on the package allow-list" in refused.stderr
    served = audit(running.settings.db_url, "packages.served")
    assert {e.fields["source"] for e in served} == {"upstream"}
    assert all(len(e.fields["sha256"]) == 64 for e in served)


def test_an_upstream_that_does_not_answer_is_said_so(start_proxy, tmp_path: Path) -> None:
    running = start_proxy(GROUPS, mode="connected", upstream="http://127.0.0.1:9/simple/")
    out = pip("install", "--index-url", running.url("cardio", "alice"), "--target",
              str(tmp_path / "t"), "alpha")  # fmt: skip
    assert out.returncode != 0
    assert "the package proxy cannot get alpha from its source now" in out.stderr, out.stderr
