"""Close-out through the real hub and sandboxes: a project with data, a running workspace,
open and released requests and a pseudonymisation key is closed; nothing of it is left under
the state folder or in the key store, the archive and certificate verify, a re-run is safe and
an interrupted close resumes."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from cloisonne.airlock.model import Actor, Decision, FileVote, State
from cloisonne.audit.store import AuditStore
from cloisonne.core.closeout import STEP_NAMES
from cloisonne.data.cli import layout
from cloisonne.data.keys import project_key
from cloisonne.keys.settings import KeySettings
from cloisonne.platform.closeout import Closeout, verify_archive
from cloisonne.platform.localhub import LocalHub
from cloisonne.service.airlock import Airlock, Upload
from cloisonne.service.directory import StaticDirectory
from cloisonne.service.lifecycle_watch import HubClient
from cloisonne.service.settings import AirlockSettings

from .conftest import free_store_port, running_hub
from .workspace import spawn

HERE = Path(__file__).parent
TABLE = b"region,count\nnord,120\nsud,85\n"
DRAFT = b"region,count\nnord,130\nsud,95\n"


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    env = {"CLOISONNE_LIFECYCLE_INTERVAL": "1", "CLOISONNE_S3": "on",
           "CLOISONNE_S3_PORT": str(free_store_port())}  # fmt: skip
    with running_hub("c", projects_file=HERE / "projects-governance.yaml", extra_env=env) as h:
        yield h


def cli(hub: LocalHub, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cloisonne.platform.cli", *args],
                          env=hub.env(), capture_output=True, text=True, timeout=300)  # fmt: skip


def airlock(hub: LocalHub, project: str) -> Airlock:
    from cloisonne.core.projects import project_from_properties

    props = hub.api("GET", f"/groups/{project}").json()["properties"]
    directory = StaticDirectory({project: project_from_properties(project, props)},
                                {"carol": {project}, "alice": {project}})  # fmt: skip
    settings = AirlockSettings(store_dir=str(hub.state / "airlock"))
    return Airlock(AuditStore(hub.db_url, create=False), directory, settings)


def make_requests(hub: LocalHub, project: str, requester: str, lead: str) -> tuple[str, str]:
    """One released request and one still open, through the airlock's own code."""
    a = airlock(hub, project)

    async def go() -> tuple[str, str]:
        released, _ = await a.submit(Actor(requester), project, [Upload("t.csv", TABLE)], "paper")
        votes = {"t.csv": FileVote(Decision.APPROVE)}
        await a.act(released["id"], "review", Actor(lead, frozenset({project})), votes=votes)
        opened, _ = await a.submit(Actor(requester), project, [Upload("d.csv", DRAFT)], "draft")
        return released["id"], opened["id"]

    return asyncio.run(go())


def test_close_a_project_with_data_workspaces_and_requests(hub: LocalHub) -> None:
    ws = spawn(hub, "alice", "cardio")
    ws.run("open('notes.txt', 'w').write('patient-level notes'); "
           "open('/shared/cohort.csv', 'w').write('id\\n1\\n')")  # fmt: skip
    extract = layout(hub.state)["project_data"] / "cardio"
    extract.mkdir(parents=True, exist_ok=True)
    (extract / "dcir.parquet").write_bytes(b"x" * 1000)
    keys_dir = layout(hub.state)["keys"]
    project_key(keys_dir, "cardio")
    released, opened = make_requests(hub, "cardio", "alice", "carol")
    store = hub.s3_store()
    store.admin_client().put_object(Bucket="cloisonne-cardio", Key="results/r.csv", Body=TABLE)
    a = airlock(hub, "cardio")
    assert a.repo.get(released).request.state is State.RELEASED
    draft_blob = a.blobs.path(a.repo.get(opened).request.files[0].sha256)
    assert draft_blob.exists()

    done = cli(hub, "project", "close", "cardio", "--why", "authorised period ended",
               "--by", "admin")  # fmt: skip
    assert done.returncode == 0, done.stderr + hub.log_tail()

    assert "cardio" not in hub.api("GET", "/users/alice").json()["servers"]
    assert "is closed" in hub.api("POST", "/users/alice/servers/cardio").json()["message"]
    for gone in (hub.state / "homes/cardio", hub.state / "shared/cardio", extract, draft_blob):
        assert not gone.exists(), gone
    service = KeySettings.from_env({}).service(keys_dir)
    assert "cardio" not in service.projects()
    assert a.repo.get(opened).request.state is State.WITHDRAWN
    archive = hub.state / "archive/cardio"
    assert verify_archive(archive) == []
    assert (archive / f"released/{released}/t.csv").read_bytes() == TABLE
    assert not (archive / "manifest.json").stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP)
    requests = json.loads((archive / "requests.json").read_text())
    assert {r["id"]: r["state"] for r in requests} == {released: "released", opened: "withdrawn"}
    audit_lines = (archive / "audit.jsonl").read_text().splitlines()
    assert all(json.loads(line)["project"] == "cardio" for line in audit_lines)
    cert = json.loads((hub.state / "archive/cardio.deletion-certificate.json").read_text())
    by_what = {d["what"]: d for d in cert["deleted"]}
    assert by_what["homes"]["files"] >= 1 and len(by_what["homes"]["sha256"]) == 64
    assert by_what["extract"]["bytes"] == 1000
    assert by_what["unreleased airlock files"]["files"] == 1
    assert "crypto-shredded" in by_what["pseudonymisation key"]["note"]
    s3 = by_what["S3 bucket and credential"]
    assert (s3["files"], s3["bytes"]) == (1, len(TABLE))
    buckets = [b["Name"] for b in store.admin_client().list_buckets()["Buckets"]]
    assert "cloisonne-cardio" not in buckets
    assert not (store.conf / "credentials" / "cardio.json").exists()
    assert cert["closed_by"] == "admin" and cert["audit_head"]["seq"] > 0
    store = AuditStore(hub.db_url, create=False)
    assert [e.type for e in store.iter_events() if e.type == "lifecycle.closed"]
    assert store.verify().ok

    again = cli(hub, "project", "close", "cardio", "--why", "again")
    assert again.returncode == 0 and "already closed" in again.stdout, again.stderr


def test_suspension_freezes_the_s3_credential_and_resume_restores_it(
    hub: LocalHub,
) -> None:
    from cloisonne.data.s3 import Credential

    spawn(hub, "dave", "onco")
    store = hub.s3_store()
    cred = Credential(**json.loads((store.conf / "credentials" / "onco.json").read_text()))
    mine = store.client(cred.access_key, cred.secret_key)
    assert mine.list_objects_v2(Bucket=cred.bucket)["KeyCount"] == 0
    done = cli(hub, "project", "suspend", "onco", "--why", "incident 9", "--by", "admin")
    assert done.returncode == 0, done.stderr
    wait_refused(mine, cred.bucket, 10)
    assert cli(hub, "project", "resume", "onco").returncode == 0
    assert mine.list_objects_v2(Bucket=cred.bucket)["KeyCount"] == 0
    # the same from the admin panel (the group's properties): the watcher withdraws it
    props = hub.api("GET", "/groups/onco").json()["properties"]
    hub.api("PUT", "/groups/onco/properties", json={**props, "state": "suspended"})
    wait_refused(mine, cred.bucket, 30)
    hub.api("PUT", "/groups/onco/properties", json=props)
    deadline = time.monotonic() + 30
    while True:
        try:
            assert mine.list_objects_v2(Bucket=cred.bucket)["KeyCount"] == 0
            break
        except ClientError:
            assert time.monotonic() < deadline, "credential not re-applied after resume"
            time.sleep(0.2)


def wait_refused(s3: object, bucket: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            s3.list_objects_v2(Bucket=bucket)  # type: ignore[attr-defined]
        except ClientError as exc:
            assert exc.response["Error"]["Code"] in ("InvalidAccessKeyId", "AccessDenied")
            return
        assert time.monotonic() < deadline, "the suspended project's credential still works"
        time.sleep(0.1)


def test_an_interrupted_close_resumes_where_it_stopped(
    hub: LocalHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawn(hub, "dave", "onco")
    client = HubClient(f"{hub.url}/hub/api", hub.ops_token)
    closing = Closeout(hub.state, "onco", client, hub.db_url, by="admin", reason="ended")

    def crash(*args: object) -> None:  # failure injection: the machine dies mid-close
        raise RuntimeError("power cut")

    monkeypatch.setattr(Closeout, "step_delete", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        closing.run()
    assert closing.load().done == ("close", "stop", "withdraw", "archive")
    monkeypatch.undo()
    progress = Closeout(hub.state, "onco", client, hub.db_url, by="admin", reason="ended").run()
    assert progress.done == STEP_NAMES
    store = AuditStore(hub.db_url, create=False)
    closing_events = [e for e in store.iter_events()
                      if e.type == "lifecycle.closing" and e.project == "onco"]  # fmt: skip
    assert len(closing_events) == 1, "finished steps are not run again"
    assert not (hub.state / "homes/onco").exists()
    assert verify_archive(hub.state / "archive/onco") == []
