"""The airlock API through the service's real tornado app (in-process; the hub stood in for)."""

from __future__ import annotations

import asyncio
import hashlib
import re

import pytest
from api_helpers import Service, upload
from cloisonne.airlock.storage import BlobStore

pytestmark = pytest.mark.server  # starts a server: not in `make unit`

SAFE_CSV = b"region,count\nnord,120\nsud,85\n"
SMALL_CELL_CSV = b"region,count\nnord,120\nsud,3\n"

ALICE_WS, BOB_WS = "ws:alice:cardio", "ws:bob:cardio"
CAROL, DAVE, ALICE, BOB = "user:carol", "user:dave", "user:alice", "user:bob"


@pytest.fixture
def svc(tmp_path):
    service = Service(tmp_path)
    yield service
    service.stop()


async def submitted(svc: Service, token: str = ALICE_WS, files: list | None = None) -> dict:
    r = await svc.client.submit(token, files or [upload("out/table.csv", SAFE_CSV)])
    assert r.code == 201, r.body
    return r.json()


async def test_full_flow_two_leads_then_requester_downloads(svc) -> None:
    c = svc.client
    req = await submitted(svc, files=[upload("out/table.csv", SAFE_CSV),
                                      upload("out/small.csv", SMALL_CELL_CSV)])  # fmt: skip
    rid = req["id"]
    assert req["state"] == "checked" and req["approvals_required"] == 2
    statuses = {f["name"]: f["check_status"] for f in req["files"]}
    assert statuses == {"out/table.csv": "pass", "out/small.csv": "fail"}
    assert req["checks"]["files"][1]["findings"], "the report names the small cell"

    r = await c.act(rid, "review", CAROL, decision="approve")
    assert r.code == 200 and r.json()["state"] == "in_review"
    # dave has not reviewed: carol's vote is blinded to him
    seen = (await c.call("GET", f"api/airlock/requests/{rid}", DAVE)).json()
    assert seen["reviews"] == [] and {f["status"] for f in seen["files"]} == {"blinded"}
    assert seen["reviewers_in"] == ["carol"]
    r = await c.act(rid, "review", DAVE, decision="approve")
    assert r.code == 200 and r.json()["state"] == "released", r.body

    r = await c.call("GET", f"api/airlock/requests/{rid}/files/out/table.csv", ALICE)
    assert r.code == 200 and r.body == SAFE_CSV
    assert r.headers["X-Content-SHA256"] == hashlib.sha256(SAFE_CSV).hexdigest()

    types = [e.type for e in svc.events() if e.fields.get("request") == rid]
    assert types == [
        "airlock.request.submitted", "airlock.request.checked", "airlock.review.submitted",
        "airlock.review.submitted", "airlock.request.approved", "airlock.request.released",
        "airlock.file.downloaded",
    ]  # fmt: skip
    assert svc.audit.verify().ok


async def test_lists_show_own_and_led_requests_only(svc) -> None:
    mine = await submitted(svc)
    onco = await submitted(svc, token="ws:bob:onco")
    ids = lambda tok: {r["id"] for r in c_list[tok]}  # noqa: E731
    c_list = {}
    for tok in (ALICE, CAROL, BOB, "user:eve", ALICE_WS):
        c_list[tok] = (await svc.client.call("GET", "api/airlock/requests", tok)).json()["requests"]
    assert ids(ALICE) == {mine["id"], onco["id"]}  # her own, and onco which she leads
    assert ids(CAROL) == {mine["id"]}
    assert ids(BOB) == {onco["id"]}
    assert ids("user:eve") == set()
    # from her cardio workspace, alice sees only her own cardio requests, nothing she leads
    assert ids(ALICE_WS) == {mine["id"]}


async def test_forbidden_actions_are_refused_and_audited(svc) -> None:
    c = svc.client
    rid = (await submitted(svc))["id"]
    onco = (await submitted(svc, token="ws:alice:onco"))["id"]  # alice leads onco
    # self-review: alice leads onco but made the request
    r = await c.act(onco, "review", ALICE, decision="approve")
    assert r.code == 403 and "may not review" in r.json()["message"]
    # non-lead member, lead of another project: the request does not exist for them
    assert (await c.act(rid, "review", BOB, decision="approve")).code == 404
    assert (await c.act(rid, "review", ALICE, decision="approve")).code == 403  # requester
    assert (await c.act(rid, "review", "user:eve", decision="approve")).code == 404
    # a lead of another project: bob's onco request does not exist for carol (cardio)
    bobs = (await submitted(svc, token="ws:bob:onco"))["id"]
    assert (await c.act(bobs, "review", CAROL, decision="approve")).code == 404
    assert (await c.call("GET", f"api/airlock/requests/{bobs}", CAROL)).code == 404
    # reviewing from a workspace token, even a lead's
    assert (await c.act(onco, "review", "ws:alice:cardio", decision="approve")).code == 403
    # downloading before approval
    r = await c.call("GET", f"api/airlock/requests/{rid}/files/out/table.csv", ALICE)
    assert r.code == 403 and "released" in r.json()["message"]
    # editing a submitted file: no route to change, replace or delete it
    for method in ("PUT", "PATCH", "DELETE"):
        r = await c.call(method, f"api/airlock/requests/{rid}/files/out/table.csv", ALICE)
        assert r.code == 405
    # submitting with a personal token (outside a workspace), or for another project
    assert (await c.submit(ALICE, [upload("a.csv", SAFE_CSV)])).code == 403
    r = await c.call(
        "POST",
        "api/airlock/requests",
        ALICE_WS,
        {"project": "onco", "justification": "x", "files": [upload("a.csv", SAFE_CSV)]},
    )
    assert r.code == 403
    # decisions without a comment; a lead withdrawing; a reviewer voting twice
    assert (await c.act(rid, "reject", CAROL)).code == 400
    assert (await c.act(rid, "return", CAROL, comment=" ")).code == 400
    assert (await c.act(rid, "withdraw", CAROL)).code == 403
    assert (await c.act(rid, "review", CAROL, decision="approve")).code == 200
    assert (await c.act(rid, "review", CAROL, decision="approve")).code == 403
    denied = [e for e in svc.events() if e.type == "airlock.access.denied"]
    assert len(denied) >= 6


async def test_return_resubmit_starts_a_new_checked_round(svc) -> None:
    c = svc.client
    rid = (await submitted(svc, files=[upload("t.csv", SMALL_CELL_CSV)]))["id"]
    r = await c.act(
        rid,
        "review",
        CAROL,
        votes={"t.csv": {"decision": "request_changes", "comment": "suppress sud"}},
    )
    assert r.code == 200
    r = await c.act(rid, "return", CAROL, comment="small cell in t.csv")
    assert r.json()["state"] == "returned"
    mine = (await c.call("GET", f"api/airlock/requests/{rid}", ALICE)).json()
    assert mine["reviews"][0]["votes"]["t.csv"]["comment"] == "suppress sud"
    assert "reviewer" not in mine["reviews"][0]
    r = await c.act(rid, "resubmit", ALICE_WS, files=[upload("t.csv", SAFE_CSV)])
    assert r.code == 200, r.body
    view = r.json()
    assert (view["state"], view["round"]) == ("checked", 2)
    assert view["files"][0]["check_status"] == "pass"
    assert (await c.act(rid, "withdraw", ALICE_WS)).json()["state"] == "withdrawn"


async def test_revoke_needs_a_comment_and_stops_downloads(tmp_path) -> None:
    svc = Service(tmp_path)
    try:
        c = svc.client
        rid = (await submitted(svc, token="ws:bob:onco"))["id"]  # onco needs one approval
        assert (await c.act(rid, "review", ALICE, decision="approve")).json()["state"] == "released"
        assert (await c.act(rid, "revoke", ALICE)).code == 400
        assert (await c.act(rid, "revoke", ALICE, comment="wrong table")).code == 200
        r = await c.call("GET", f"api/airlock/requests/{rid}/files/out/table.csv", BOB)
        assert r.code == 403
    finally:
        svc.stop()


@pytest.mark.parametrize(
    ("files", "code", "says"),
    [
        ([], 400, "at least one file"),
        ([upload("../etc/passwd", b"x")], 400, "plain relative path"),
        ([upload("/abs.csv", b"x")], 400, "plain relative path"),
        ([upload("a.csv", SAFE_CSV, sha="0" * 64)], 400, "do not match"),
        ([{"name": "a.csv", "content": "not base64!"}], 400, "base64"),
        ([upload("a.csv", b"x"), upload("a.csv", b"y")], 400, "twice"),
        ([upload("big.csv", b"1" * 2048)], 413, "over the cap"),
    ],
)
async def test_bad_input_is_refused(tmp_path, files, code, says) -> None:
    svc = Service(tmp_path, max_file_bytes=1024)
    try:
        r = await svc.client.submit(ALICE_WS, files)
        assert r.code == code and says in r.json()["message"], r.body
        assert svc.airlock.repo.count_by_state() == {}
        assert not [p for p in (tmp_path / "airlock").rglob("*") if p.is_file()]
    finally:
        svc.stop()


async def test_unknown_project_and_missing_justification(svc) -> None:
    r = await svc.client.submit("ws:alice:nowhere", [upload("a.csv", SAFE_CSV)])
    assert r.code == 404 and "unknown project" in r.json()["message"]
    r = await svc.client.submit(ALICE_WS, [upload("a.csv", SAFE_CSV)], why="  ")
    assert r.code == 400


async def test_malformed_tables_are_flagged_not_a_crash(svc) -> None:
    req = await submitted(svc, files=[upload("bad.parquet", b"PAR1 not parquet"),
                                      upload("bad.csv", b"\x00\xff\xfe\x00,,\n\"")])  # fmt: skip
    report = {f["name"]: f for f in req["checks"]["files"]}
    assert req["state"] == "checked"
    assert report["bad.parquet"]["status"] == "fail"
    assert any("could not be read" in x["message"] for x in report["bad.parquet"]["findings"])


async def test_duplicate_concurrent_submissions_make_one_request(svc) -> None:
    files = [upload("t.csv", SAFE_CSV)]
    a, b = await asyncio.gather(svc.client.submit(ALICE_WS, files),
                                svc.client.submit(ALICE_WS, files))  # fmt: skip
    assert sorted([a.code, b.code]) == [200, 201]
    assert a.json()["id"] == b.json()["id"]
    assert sum(svc.airlock.repo.count_by_state().values()) == 1
    # once closed, the same files may be asked for again
    await svc.client.act(a.json()["id"], "withdraw", ALICE_WS)
    assert (await svc.client.submit(ALICE_WS, files)).code == 201


async def test_no_half_stored_file_and_no_request_when_storing_fails(svc, monkeypatch) -> None:
    import cloisonne.airlock.storage as storage

    calls = {"n": 0}
    real = storage.os.fsync

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # the second file's data (1: file, 2: its folder)
            raise OSError("disk gone")
        real(fd)

    monkeypatch.setattr(storage.os, "fsync", failing_fsync)
    r = await svc.client.submit(ALICE_WS, [upload("a.csv", SAFE_CSV), upload("b.csv", b"z,1\n")])
    assert r.code == 500
    assert svc.airlock.repo.count_by_state() == {}
    assert list(svc.airlock.blobs.tmp.iterdir()) == []
    stored = [p for p in svc.airlock.blobs.root.rglob("*") if p.is_file()]
    assert [p.name for p in stored] == [hashlib.sha256(SAFE_CSV).hexdigest()]  # whole, or not
    # a temporary file left by a killed service is removed at the next start
    (svc.airlock.blobs.tmp / "deadbeef.partial").write_bytes(b"half")
    await svc.airlock.recover()
    assert list(svc.airlock.blobs.tmp.iterdir()) == []


def test_store_is_private_read_only_and_checks_its_bytes(tmp_path) -> None:
    store = BlobStore(tmp_path / "s")
    digest = store.put(b"hello")
    assert (tmp_path / "s").stat().st_mode & 0o777 == 0o700
    assert store.path(digest).stat().st_mode & 0o777 == 0o400
    assert store.read(digest) == b"hello"
    store.path(digest).chmod(0o600)
    store.path(digest).write_bytes(b"tampered")
    with pytest.raises(storage_error()):
        store.read(digest)


def storage_error() -> type:
    from cloisonne.airlock.storage import StorageError

    return StorageError


async def test_metrics_and_openapi(svc) -> None:
    c = svc.client
    await submitted(svc)
    assert (await c.call("GET", "metrics", ALICE)).code == 403
    text = (await c.call("GET", "metrics", "admin:root")).body.decode()
    assert 'cloisonne_airlock_requests{state="checked"} 1.0' in text
    assert "cloisonne_airlock_check_duration_seconds_count 1.0" in text
    assert "cloisonne_airlock_review_wait_seconds" in text
    waited = re.search(r"^cloisonne_airlock_oldest_waiting_seconds (\S+)$", text, re.M)
    assert waited and 0 <= float(waited.group(1)) < 60
    doc = (await c.call("GET", "api/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/airlock/requests", "/api/airlock/requests/{id}/review", "/metrics"} <= set(
        doc["paths"]
    )


async def test_recover_checks_requests_whose_checks_never_ran(svc) -> None:
    from cloisonne.airlock.model import Actor
    from cloisonne.airlock.states import new_request
    from cloisonne.core.projects import Project
    from cloisonne.service.airlock import RequestFile, now

    digest = svc.airlock.blobs.put(SAFE_CSV)
    made = new_request(id="r-crashed", project=Project("cardio"), requester=Actor("alice"),
                       files=[RequestFile("t.csv", digest, len(SAFE_CSV))], now=now())  # fmt: skip
    with svc.airlock.repo.engine.begin() as conn:  # the service died before its checks
        conn.execute(svc.airlock.repo.insert_statement(made.request, open_key="k"))
    await svc.airlock.recover()
    view = svc.airlock.get("r-crashed", Actor("alice"))
    assert view["state"] == "checked" and view["files"][0]["check_status"] == "pass"
