"""The service takes a call as a workspace's only with the proof the spawner recorded, and
records every refused claim (in-process service; the hub stood in for)."""

from __future__ import annotations

import pytest
from api_helpers import Service, upload
from cloisonne.core.workspace_proof import WorkspaceProof, token_digest

pytestmark = pytest.mark.server  # starts a server: not in `make unit`

CSV = b"region,count\nnord,120\nsud,85\n"


@pytest.fixture
def svc(tmp_path):
    service = Service(tmp_path)
    yield service
    service.stop()


def refused(svc: Service) -> list[dict]:
    return [dict(e.fields, user=e.user, project=e.project) for e in svc.events()
            if e.type == "service.workspace_refused"]  # fmt: skip


async def test_a_minted_server_token_opens_no_request_and_writes_no_event(svc) -> None:
    # alice's own token scoped to a server she has no workspace of (not a member of onco)
    svc.airlock.directory.proofs["alice/onco"] = None
    r = await svc.client.submit("ws:alice:onco", [upload("t.csv", CSV)])
    assert r.code == 403 and "alice/onco is not running" in r.json()["message"]
    r = await svc.client.call("POST", "api/audit/events", "ws:alice:onco",
                              [{"type": "kernel.socket_connect", "fields": {}}])  # fmt: skip
    assert r.code == 403
    listed = await svc.client.call("GET", "api/airlock/requests", "admin:root")
    assert listed.json()["requests"] == []
    events = refused(svc)
    assert len(events) == 2 and {e["path"].rsplit("/", 1)[-1] for e in events} == {
        "requests", "events"}  # fmt: skip
    assert all(e["user"] == "alice" and e["project"] == "onco" for e in events)


async def test_a_token_that_is_not_the_servers_own_is_refused(svc) -> None:
    svc.airlock.directory.proofs["alice/cardio"] = WorkspaceProof("s1", token_digest("real"))
    r = await svc.client.submit("ws:alice:cardio", [upload("t.csv", CSV)])
    assert r.code == 403 and "never speaks for a workspace" in r.json()["message"]
    assert [e["server"] for e in refused(svc)] == ["alice/cardio"]


async def test_the_workspace_token_from_another_address_is_refused(svc) -> None:
    proof = WorkspaceProof("s1", token_digest("ws:alice:cardio"), "10.243.0.6")
    svc.airlock.directory.proofs["alice/cardio"] = proof
    # X-Real-IP is what a caller writes; the socket's peer (127.0.0.1) is what counts
    r = await svc.client.call("POST", "api/airlock/requests", "ws:alice:cardio",
                              {"justification": "t", "files": [upload("t.csv", CSV)]},
                              headers={"X-Real-IP": "10.243.0.6"})  # fmt: skip
    assert r.code == 403 and "sent from 127.0.0.1" in r.json()["message"]
    assert refused(svc)[0]["peer"] == "127.0.0.1"


async def test_a_proven_workspace_request_says_which_start_it_came_from(svc) -> None:
    r = await svc.client.submit("ws:alice:cardio", [upload("t.csv", CSV)])
    assert r.code == 201, r.body
    submitted = [e for e in svc.events() if e.type == "airlock.request.submitted"]
    assert submitted[-1].fields["workspace"] == {
        "server": "alice/cardio",
        "spawn_id": "spawn-alice-cardio",
    }
    assert r.json()["workspace"] == "alice/cardio"
    assert r.json()["spawn_id"] == "spawn-alice-cardio"
