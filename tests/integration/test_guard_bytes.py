"""Every byte into the workspace through Jupyter is capped and recorded, whatever its type or
route: notebook PUTs, chunked uploads (the running total, and those abandoned), copy, rename, and
export requests the workspace refuses. From a real sandboxed workspace through the hub's proxy,
on a hub of its own with a 1 MiB upload cap and a 2 s abandon time."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest
import requests
from cloisonne.platform.localhub import LocalHub

from .conftest import running_hub
from .test_guard import audit_events, last_seq
from .workspace import Workspace, spawn, stop

CAP = 1024**2
ABANDON_S = 2


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    env = {"CLOISONNE_UPLOAD_MAX": "1M", "CLOISONNE_UPLOAD_ABANDON_SECONDS": str(ABANDON_S),
           "CLOISONNE_AIRLOCK_MAX_FILE": "1M"}  # fmt: skip
    with running_hub("u", extra_env=env) as h:
        yield h


@pytest.fixture(scope="module")
def ws(hub: LocalHub) -> Iterator[Workspace]:
    workspace = spawn(hub, "alice", "cardio")
    try:
        yield workspace
    finally:
        stop(hub, "alice", "cardio")


def put(ws: Workspace, path: str, model: dict) -> requests.Response:
    return requests.put(ws.base + f"api/contents/{path}", headers=ws._headers(), json=model,
                        timeout=60)  # fmt: skip


def exists(ws: Workspace, path: str) -> bool:
    r = ws.get(f"api/contents/{path}?content=0")
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


def events(hub: LocalHub, before: int, kind: str) -> list:
    found = [e for e in audit_events(hub, before) if e.type == kind]
    assert all((e.user, e.project) == ("alice", "cardio") for e in found)
    return found


def notebook(source_bytes: int) -> dict:
    cell = {"cell_type": "code", "source": "x" * source_bytes, "metadata": {}, "outputs": [],
            "execution_count": None}  # fmt: skip
    content = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return {"type": "notebook", "content": content}


def chunk(data: bytes, n: int) -> dict:
    return {"type": "file", "format": "base64", "chunk": n,
            "content": base64.b64encode(data).decode()}  # fmt: skip


def test_notebook_over_the_cap_is_refused_and_recorded(hub: LocalHub, ws: Workspace) -> None:
    before = last_seq(hub)
    r = put(ws, "huge.ipynb", notebook(CAP + 1000))
    assert r.status_code == 413, r.text[:300]
    assert f"over the {CAP}-byte limit" in r.json()["message"]
    assert not exists(ws, "huge.ipynb")
    (event,) = events(hub, before, "guard.import")
    assert (event.fields["allowed"], event.fields["type"]) == (False, "notebook")
    assert event.fields["bytes"] > CAP and event.fields["path"] == "huge.ipynb"


def test_notebook_under_the_cap_is_recorded(hub: LocalHub, ws: Workspace) -> None:
    before = last_seq(hub)
    assert put(ws, "small.ipynb", notebook(1000)).status_code == 201
    (event,) = events(hub, before, "guard.import")
    assert (event.fields["allowed"], event.fields["type"]) == (True, "notebook")
    assert 1000 < event.fields["bytes"] < 2000
    before = last_seq(hub)
    assert put(ws, "folder", {"type": "directory"}).status_code == 201
    (event,) = events(hub, before, "guard.import")
    assert (event.fields["allowed"], event.fields["type"]) == (True, "directory")


def test_abandoned_chunked_upload_is_removed_and_recorded(hub: LocalHub, ws: Workspace) -> None:
    before = last_seq(hub)
    for n in (1, 2):  # the last chunk (-1) never comes
        assert put(ws, "partial.bin", chunk(b"\1" * 1000, n)).status_code in (200, 201)
    assert exists(ws, "partial.bin")
    assert events(hub, before, "guard.upload_abandoned") == []
    deadline = time.monotonic() + ABANDON_S + 10
    while exists(ws, "partial.bin") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not exists(ws, "partial.bin"), "the abandoned upload is still in the home"
    (event,) = events(hub, before, "guard.upload_abandoned")
    assert (event.fields["path"], event.fields["bytes"], event.fields["allowed"]) == (
        "partial.bin", 2000, False)  # fmt: skip
    assert "abandoned" in event.fields["reason"]


def test_running_total_over_the_cap_is_refused(hub: LocalHub, ws: Workspace) -> None:
    before = last_seq(hub)
    part = b"\2" * (400 * 1024)  # each chunk is under the cap, three are over it
    assert put(ws, "big.bin", chunk(part, 1)).status_code in (200, 201)
    assert put(ws, "big.bin", chunk(part, 2)).status_code in (200, 201)
    r = put(ws, "big.bin", chunk(part, -1))
    assert r.status_code == 413 and f"over the {CAP}-byte limit" in r.json()["message"]
    assert not exists(ws, "big.bin")
    # the upload's start is recorded, the chunks between are counted, the refusal recorded
    started, refused = events(hub, before, "guard.import")
    assert (started.fields["allowed"], started.fields["chunk"]) == (True, 1)
    assert (refused.fields["allowed"], refused.fields["chunk"]) == (False, -1)
    assert refused.fields["bytes"] == 3 * len(part)


def test_copy_and_rename_are_recorded(hub: LocalHub, ws: Workspace) -> None:
    assert put(ws, "orig.ipynb", notebook(100)).status_code == 201
    before = last_seq(hub)
    r = requests.post(ws.base + "api/contents", headers=ws._headers(),
                      json={"copy_from": "orig.ipynb"}, timeout=30)  # fmt: skip
    assert r.status_code == 201, r.text[:300]
    copied = r.json()["path"]
    (event,) = events(hub, before, "guard.copy")
    assert (event.fields["from"], event.fields["path"], event.fields["allowed"]) == (
        "orig.ipynb", copied, True)  # fmt: skip
    assert event.fields["bytes"] > 100
    assert events(hub, before, "guard.read") == events(hub, before, "guard.import") == []
    before = last_seq(hub)
    r = requests.patch(ws.base + f"api/contents/{copied}", headers=ws._headers(),
                       json={"path": "folder/moved.ipynb"}, timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text[:300]
    (event,) = events(hub, before, "guard.rename")
    assert (event.fields["from"], event.fields["path"]) == (copied, "folder/moved.ipynb")


SETUP_EXPORTS = """
import os
os.path.lexists('data-link.csv') or os.symlink('/data/dcir-sample/dispensings.csv', 'data-link.csv')
open('too-big.csv', 'w').write('x' * (2 * 1024 * 1024))
print('ok')
"""


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("data-link.csv", "only files in your home"),
        ("../../etc/passwd", "only files in your home"),
        ("too-big.csv", "over the airlock's cap"),
    ],
)
def test_refused_export_is_recorded(hub: LocalHub, ws: Workspace, path: str, reason: str) -> None:
    assert ws.run(SETUP_EXPORTS).strip() == "ok"
    before = last_seq(hub)
    r = requests.post(ws.base + "cloisonne/exports", headers=ws._headers(),
                      json={"paths": [path], "why": "Table 1"}, timeout=60)  # fmt: skip
    assert r.status_code == 400 and reason in r.json()["message"], r.text[:300]
    (event,) = events(hub, before, "guard.export_refused")
    assert event.fields["paths"] == [path] and reason in event.fields["reason"]
    assert event.fields["allowed"] is False


def test_copying_a_folder_with_a_link_out_is_refused(hub: LocalHub, ws: Workspace) -> None:
    ws.run("""
        import os
        os.makedirs('linked', exist_ok=True)
        os.path.lexists('linked/d.csv') or os.symlink('/data/dcir-sample/dispensings.csv',
                                                      'linked/d.csv')
        """)  # fmt: skip
    before = last_seq(hub)
    r = requests.post(ws.base + "api/contents", headers=ws._headers(),
                      json={"copy_from": "linked"}, timeout=30)  # fmt: skip
    assert r.status_code == 403 and "leads outside" in r.json()["message"], r.text[:300]
    assert not exists(ws, "linked-Copy1") and not exists(ws, "linked-Copy1/d.csv")
    (event,) = events(hub, before, "guard.copy")
    assert (event.fields["from"], event.fields["allowed"]) == ("linked", False)
