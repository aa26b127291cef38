"""The guard fails closed: an open network route stops the workspace at start, and without the
audit service nothing is served."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from cloisonne.platform.localhub import LocalHub

from .conftest import allocate_site, find_pids, free_port, make_hub
from .test_guard import audit_events, last_seq
from .workspace import spawn


@pytest.fixture(scope="module")
def leaky_hub(tmp_path_factory) -> Iterator[tuple[LocalHub, int]]:
    """A hub with a project whose egress list opens a route to a listener on the host, which
    is also one of the addresses the self-test probes: as a site whose network plugin lets
    traffic out would look."""
    site = allocate_site("g")
    hub_ip = site.hub_ip
    port = free_port()
    projects = tmp_path_factory.mktemp("leaky") / "projects.yaml"
    projects.write_text(
        "projects:\n"
        "  - id: cardio\n    members: [alice]\n    datasets: [dcir-sample]\n"
        "  - id: leaky\n    members: [alice]\n    datasets: [dcir-sample]\n"
        f"    egress: ['{hub_ip}:{port}']\n"
    )
    hub = make_hub("g", site, projects_file=projects,
                   extra_env={"CLOISONNE_EGRESS_PROBES": f"{hub_ip}:9 {hub_ip}:{port}"})  # fmt: skip
    try:
        hub.start()
        yield hub, port
    finally:
        hub.teardown()


def listen(ip: str, port: int) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port))
    s.listen()

    def accept() -> None:
        while True:
            try:
                conn, _ = s.accept()
                conn.close()
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return s


def test_egress_self_test_refuses_to_start_with_an_open_route(leaky_hub) -> None:
    hub, port = leaky_hub
    listener = listen(hub.site.hub_ip, port)
    try:
        r = hub.api("POST", "/users/alice/servers/leaky")
        if r.status_code < 400:
            r = hub.api("GET", "/users/alice/servers/leaky/progress")
        assert "Egress self-test failed" in r.text and f"{hub.site.hub_ip}:{port}" in r.text
    finally:
        listener.close()
    alerts = [e for e in audit_events(hub) if e.type == "alert.egress_open"]
    assert alerts and alerts[-1].project == "leaky"
    assert not hub.api("GET", "/users/alice").json()["servers"].get("leaky", {}).get("ready")


def service_pid(hub: LocalHub) -> int:
    pids = find_pids(b"cloisonne.service", f"CLOISONNE_AUDIT_DB={hub.db_url}\0".encode(),
                     exclude=b"with_hub")  # fmt: skip
    assert pids, "the cloisonne service of this hub is not running"
    return pids[0]


def test_without_the_audit_service_nothing_is_served(leaky_hub) -> None:
    hub, _ = leaky_hub
    ws = spawn(hub, "alice", "cardio")
    ws.run("open('secret-results.txt', 'w').write('CONFIDENTIAL-42')")
    assert ws.get("api/contents/secret-results.txt").status_code == 200
    before = last_seq(hub)
    served: list[int] = []
    stop_reading = threading.Event()

    def read_continuously() -> None:  # reads in flight while the service dies
        while not stop_reading.is_set():
            served.append(ws.get("api/contents/secret-results.txt").status_code)

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        time.sleep(0.3)
        os.kill(service_pid(hub), signal.SIGKILL)
        time.sleep(0.5)
    finally:
        stop_reading.set()
        reader.join()
    assert served.count(200) > 0 and served[-1] == 503, served
    for path in ("api/contents/secret-results.txt", "files/secret-results.txt",
                 "nbconvert/html/secret-results.txt"):  # fmt: skip
        r = ws.get(path)
        assert r.status_code == 503, (path, r.status_code)
        assert "audit service cannot be reached" in r.text
        assert "CONFIDENTIAL-42" not in r.text
    r = requests.put(ws.base + "api/contents/imported.txt", headers=ws._headers(),
                     json={"type": "file", "format": "text", "content": "x"})  # fmt: skip
    assert r.status_code == 503
    # every other write through Jupyter fails closed too: nothing written, copied or moved
    writes = [
        ("PUT", "api/contents/nb.ipynb", {"type": "notebook", "content": {
            "cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}),
        ("PUT", "api/contents/folder", {"type": "directory"}),
        ("PUT", "api/contents/chunked.bin", {"type": "file", "format": "base64", "chunk": 1,
                                             "content": "eA=="}),
        ("POST", "api/contents", {"copy_from": "secret-results.txt"}),
        ("PATCH", "api/contents/secret-results.txt", {"path": "moved.txt"}),
    ]  # fmt: skip
    for method, path, body in writes:
        r = requests.request(method, ws.base + path, headers=ws._headers(), json=body,
                             timeout=30)  # fmt: skip
        assert r.status_code == 503, (method, path, r.status_code, r.text[:200])
    listing = ws.run("import os; print(sorted(os.listdir('.')))")
    for name in ("imported.txt", "nb.ipynb", "folder", "chunked.bin", "moved.txt",
                 "secret-results-Copy1.txt"):  # fmt: skip
        assert name not in listing, (name, listing)
    assert "secret-results.txt" in listing

    # The hub restarts its managed service; reads resume, and every read that was answered
    # 200 while the service died is in the audit log, exactly once.
    deadline = time.monotonic() + 30
    while ws.get("api/contents/secret-results.txt").status_code != 200:
        assert time.monotonic() < deadline, "the guard did not resume after the service restart"
        time.sleep(0.2)
    reads = [e for e in audit_events(hub, before)
             if e.type == "guard.read" and e.fields["path"] == "/secret-results.txt"]  # fmt: skip
    assert len(reads) == served.count(200) + 1, (len(reads), served)
    assert all(e.user == "alice" and e.project == "cardio" for e in reads)
