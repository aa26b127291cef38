"""The audit log through the real service and hub: who may append, what the hub records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests
from cloisonne.audit.store import AuditStore
from cloisonne.platform.localhub import LocalHub

from .oidc_login import login
from .workspace import spawn, stop, user_token

APPEND = """
import json, os, urllib.request
def post(body, token=os.environ['JUPYTERHUB_API_TOKEN']):
    req = urllib.request.Request(os.environ['CLOISONNE_SERVICE_URL'] + 'api/audit/events',
        data=json.dumps(body).encode(), method='POST',
        headers={'Authorization': 'token ' + token, 'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
print(json.dumps([
    post({'type': 'test.hello', 'fields': {'n': 1}}),
    post({'type': 'test.spoof', 'user': 'dave', 'project': 'onco', 'fields': {}}),
    post({'type': 'Not A Type'}),
]))
"""


# The guard's HTTP path (Kubernetes, or CLOISONNE_AUDIT_JOURNAL=off), run with the workspace's
# own token: async appends, the blocking one used before the event loop, and a 503 (not a
# silent loss) when the service cannot be reached.
GUARD_HTTP_CLIENT = """
import json
from cloisonne.workspace.guard.audit_client import AuditClient, AuditUnavailable
client = AuditClient()
async def main():
    one = await client.append('test.http_one', n=1)
    many = await client.append_many([('test.http_many', {'n': 2}), ('test.http_many', {'n': 3})])
    try:
        await AuditClient('http://127.0.0.1:9/', timeout=2).append('test.lost')
        down = None
    except AuditUnavailable as exc:
        down = exc.status_code
    return one, many, down
one, many, down = await main()  # the kernel runs an event loop already
client.append_now([('test.http_now', {'n': 4})])
print(json.dumps({'seqs': [one['seq']] + [m['seq'] for m in many], 'down': down}))
"""


def events(hub: LocalHub) -> list:
    store = AuditStore(hub.db_url, create=False)
    try:
        return list(store.iter_events())
    finally:
        store.close()


def test_workspace_appends_only_as_itself(platform: LocalHub) -> None:
    ws = spawn(platform, "alice", "cardio")
    try:
        (ok, spoof, bad) = ws.run_json(APPEND)
        assert ok[0] == 201 and ok[1]["events"][0]["seq"] > 0
        assert spoof[0] == 201 and bad[0] == 400
        stored = {e.type: e for e in events(platform)}
        assert (stored["test.hello"].user, stored["test.hello"].project) == ("alice", "cardio")
        # user and project come from the token, whatever the body says
        assert (stored["test.spoof"].user, stored["test.spoof"].project) == ("alice", "cardio")
        result = ws.run_json(GUARD_HTTP_CLIENT)
        assert result["down"] == 503 and sorted(result["seqs"]) == result["seqs"]
        http = [e for e in events(platform) if e.type.startswith("test.http")]
        assert [(e.type, e.fields["n"]) for e in http] == [
            ("test.http_one", 1), ("test.http_many", 2), ("test.http_many", 3),
            ("test.http_now", 4)]  # fmt: skip
        assert {(e.user, e.project) for e in http} == {("alice", "cardio")}
        assert not [e for e in events(platform) if e.type == "test.lost"]
    finally:
        stop(platform, "alice", "cardio")


def service_url(hub: LocalHub) -> str:
    return f"{hub.url}/services/cloisonne/api/audit/"


def test_users_cannot_append_edit_or_delete(platform: LocalHub) -> None:
    token = user_token(platform, "bob")
    headers = {"Authorization": f"token {token}"}
    r = requests.post(service_url(platform) + "events", json={"type": "x.y"}, headers=headers)
    assert r.status_code == 403 and "server token" in r.json()["message"]
    for method in ("PUT", "PATCH", "DELETE"):
        r = requests.request(method, service_url(platform) + "events", headers=headers)
        assert r.status_code == 405
    assert requests.get(service_url(platform) + "head", headers=headers).status_code == 403


def test_hub_records_logins_spawns_stops_and_group_changes(platform: LocalHub) -> None:
    assert login(platform, "dave", "d-pw").response.url.endswith("/hub/home")
    spawn(platform, "dave", "onco")
    stop(platform, "dave", "onco")
    assert platform.api("POST", "/groups/onco/users", json={"users": ["eve"]}).ok
    assert platform.api("DELETE", "/groups/onco/users", json={"users": ["eve"]}).ok
    seen = [(e.type, e.user, e.project) for e in events(platform)]
    assert ("hub.login", "dave", "") in seen
    assert ("hub.spawn", "dave", "onco") in seen and ("hub.stop", "dave", "onco") in seen
    changes = [e for e in events(platform) if e.type == "hub.group_change"]
    assert [(e.user, e.fields["method"], e.fields["users"]) for e in changes[-2:]] == [
        ("cloisonne-ops", "POST", ["eve"]), ("cloisonne-ops", "DELETE", ["eve"])
    ]  # fmt: skip


def test_chain_verifies_with_the_cli(platform: LocalHub) -> None:
    cli = Path(sys.executable).parent / "cloisonne"
    env = {**platform.env()}
    result = subprocess.run([str(cli), "audit", "verify"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    head = subprocess.run([str(cli), "audit", "head"], env=env, capture_output=True, text=True)
    seq, digest = head.stdout.split()
    assert int(seq) == events(platform)[-1].seq and digest == events(platform)[-1].hash


# From inside the workspace: its own token, and a token alice made herself for the same
# server (same scopes), each posting an event.
POST_WITH = """
import json, os, urllib.request
def post(token):
    req = urllib.request.Request(os.environ['CLOISONNE_SERVICE_URL'] + 'api/audit/events',
        data=json.dumps({'type': 'kernel.proof_probe', 'fields': {}}).encode(), method='POST',
        headers={'Authorization': 'token ' + token, 'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
print(json.dumps({'own': post(os.environ['JUPYTERHUB_API_TOKEN']), 'minted': post(%r),
                  'token': os.environ['JUPYTERHUB_API_TOKEN']}))
"""


def test_only_the_workspace_itself_speaks_for_it(platform: LocalHub) -> None:
    """A token alice mints with a workspace's scopes is never that workspace, and the
    workspace's own token carried out of it is refused; each refusal is in the audit log."""
    scopes = ["access:servers!server=alice/{}", "access:services!service=cloisonne"]

    def mint(server: str) -> str:
        r = platform.api("POST", "/users/alice/tokens",
                         json={"note": "mine", "expires_in": 600,
                               "scopes": [s.format(server) for s in scopes]})  # fmt: skip
        assert r.status_code == 201, r.text
        return r.json()["token"]

    airlock = f"{platform.url}/services/cloisonne/api/airlock/requests"
    body = {"justification": "table", "files": [{"name": "t.csv", "sha256": "", "content": ""}]}
    # a project alice is not in, from outside any workspace
    onco = mint("onco")
    r = requests.post(airlock, json=body, headers={"Authorization": f"token {onco}"})
    assert r.status_code == 403 and "alice/onco is not running" in r.json()["message"]
    r = requests.post(service_url(platform) + "events", json={"type": "kernel.x"},
                      headers={"Authorization": f"token {onco}"})  # fmt: skip
    assert r.status_code == 403
    ws = spawn(platform, "alice", "cardio")
    try:
        out = ws.run_json(POST_WITH % mint("cardio"))
        assert out["own"][0] == 201, out
        assert out["minted"][0] == 403 and "never speaks for a workspace" in out["minted"][1][
            "message"]  # fmt: skip
        # the workspace's own token, carried out of it (through the proxy, with a forged
        # X-Real-IP naming the workspace's address)
        state = platform.api("GET", "/users/alice").json()["servers"]["cardio"]["state"]
        address = state["cloisonne_workspace"]["address"]
        assert address.startswith("10.") and out["token"] not in str(state)
        own = {"Authorization": f"token {out['token']}", "X-Real-IP": address}
        r = requests.post(airlock, json=body, headers=own)
        assert r.status_code == 403 and "not from inside that workspace" in r.json()["message"]
    finally:
        stop(platform, "alice", "cardio")
    refused = [e for e in events(platform) if e.type == "service.workspace_refused"]
    assert {e.fields["server"] for e in refused[-4:]} == {"alice/onco", "alice/cardio"}
    assert len(refused) >= 4
    assert not [e for e in events(platform) if e.type == "kernel.proof_probe"][1:]
