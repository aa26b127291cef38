"""``cloisonne project close P``: the local platform's shell around ``core.closeout``.

Each step of ``core.closeout.STEPS`` is a method here; after each, the progress file
(``<state>/closeout/<project>.json``, root-only) is rewritten, so an interrupted close resumes
where it stopped and a finished one does nothing when run again. The archive is written to
``<state>/archive/<project>/`` and made read-only; the deletion certificate goes beside it.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..airlock.codec import request_to_dict
from ..airlock.model import SYSTEM, Action, State
from ..audit.chain import canonical
from ..audit.store import AuditStore
from ..core.closeout import (
    Deleted,
    Progress,
    certificate,
    manifest,
    mark_done,
    next_step,
    tree_digest,
)
from ..core.governance import CLOSED
from ..core.lifecycle import servers_to_stop
from ..core.projects import project_from_properties
from ..data.cli import layout
from ..service.airlock import Airlock
from ..service.directory import StaticDirectory
from ..service.lifecycle_watch import HubClient, running_servers, stop_all, wait_stopped
from ..service.settings import AirlockSettings
from .s3_running import running_s3_store

OPEN = (State.SUBMITTED, State.CHECKED, State.IN_REVIEW, State.RETURNED, State.RESUBMITTED)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(root: Path) -> Iterator[Path]:
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath, name)
            if path.is_file() and not path.is_symlink():
                yield path


def measure(what: str, root: Path) -> Deleted:
    """Files, bytes and a digest of a folder, before it is deleted."""
    if not root.exists():
        return Deleted(what, str(root), note="absent (nothing to delete)")
    entries, total = [], 0
    for path in _files(root):
        total += path.stat().st_size
        entries.append((str(path.relative_to(root)), _file_sha256(path)))
    return Deleted(what, str(root), len(entries), total, tree_digest(entries))


class Closeout:
    def __init__(self, state: Path, project: str, client: HubClient, db_url: str,
                 *, by: str, reason: str) -> None:  # fmt: skip
        self.state, self.project, self.client, self.db_url = state, project, client, db_url
        self.by, self.reason = by, reason
        self.progress_file = state / "closeout" / f"{project}.json"
        self.archive = state / "archive" / project
        self.store = AuditStore(db_url, create=False)

    # -- progress ---------------------------------------------------------------------------

    def load(self) -> Progress:
        if self.progress_file.exists():
            return Progress.from_json(self.progress_file.read_text())
        return Progress(self.project, by=self.by, reason=self.reason, started_at=_now())

    def save(self, progress: Progress) -> None:
        self.progress_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.progress_file.with_suffix(".tmp")
        tmp.write_text(progress.to_json())
        os.chmod(tmp, 0o600)
        tmp.replace(self.progress_file)

    def run(self) -> Progress:
        progress = self.load()
        while (step := next_step(progress)) is not None:
            deleted, results = getattr(self, f"step_{step}")(progress)
            progress = mark_done(progress, step, deleted=deleted, **results)
            self.save(progress)
        return progress

    # -- steps ------------------------------------------------------------------------------

    def _properties(self) -> dict[str, Any]:
        r = self.client.call("GET", f"/groups/{self.project}")
        if r.status_code == 404:
            raise SystemExit(f"no project '{self.project}' on this hub")
        return dict(r.json()["properties"])

    def step_close(self, progress: Progress) -> tuple[list, dict]:
        props = self._properties()
        props.update(state=CLOSED, state_why=progress.reason, state_by=progress.by,
                     state_at=progress.started_at)  # fmt: skip
        self.client.call("PUT", f"/groups/{self.project}/properties", json=props)
        self.store.append("lifecycle.closing", user=progress.by, project=self.project,
                          fields={"why": progress.reason})  # fmt: skip
        return [], {}

    def step_stop(self, progress: Progress) -> tuple[list, dict]:
        props = self._properties()
        projects = {self.project: project_from_properties(self.project, props)}
        today = datetime.datetime.now(datetime.UTC).date()
        orders = servers_to_stop(projects, running_servers(self.client.active_users()), today)
        stop_all(self.client, orders, self.store)
        wait_stopped(self.client, self.project)
        return [], {"stopped": [f"{o.user}/{o.server}" for o in orders]}

    def _airlock(self) -> Airlock:
        props = self._properties()
        directory = StaticDirectory({self.project: project_from_properties(self.project, props)},
                                    {})  # fmt: skip
        return Airlock(self.store, directory, AirlockSettings(store_dir=str(self.airlock_dir)))

    @property
    def airlock_dir(self) -> Path:
        return self.state / "airlock"

    def _requests(self, airlock: Airlock) -> list:
        return [s.request for s in airlock.repo.in_states(State)
                if s.request.project == self.project]  # fmt: skip

    def step_withdraw(self, progress: Progress) -> tuple[list, dict]:
        airlock = self._airlock()
        withdrawn = []
        for request in self._requests(airlock):
            if request.state in OPEN:
                comment = f"project closed: {progress.reason}"
                asyncio.run(airlock.act(request.id, Action.WITHDRAW, SYSTEM, comment))
                withdrawn.append(request.id)
        return [], {"withdrawn": withdrawn}

    def step_archive(self, progress: Progress) -> tuple[list, dict]:
        if self.archive.exists():  # an archive step interrupted half-way: start it again
            _make_writable(self.archive)
            shutil.rmtree(self.archive)
        self.archive.mkdir(parents=True, mode=0o700)
        airlock = self._airlock()
        requests = self._requests(airlock)
        written: dict[str, tuple[int, str]] = {}

        def write(name: str, data: bytes) -> None:
            path = self.archive / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written[name] = (len(data), hashlib.sha256(data).hexdigest())

        for request in requests:
            if request.state is State.RELEASED:
                for f in request.files:
                    write(f"released/{request.id}/{f.name}", airlock.blobs.read(f.sha256))
        write("requests.json", json.dumps([request_to_dict(r) for r in requests],
                                          indent=1, sort_keys=True).encode())  # fmt: skip
        head = self.store.head()
        lines = [canonical(_event_dict(e)) for e in self.store.iter_events(until_seq=head.seq)
                 if e.project == self.project]  # fmt: skip
        write("audit.jsonl", b"".join(line + b"\n" for line in lines))
        audit_head = {"seq": head.seq, "hash": head.hash}
        write("audit-head.json", json.dumps(audit_head).encode())
        m = json.dumps(manifest(written, self.project, audit_head), indent=1).encode()
        (self.archive / "manifest.json").write_bytes(m)
        _make_read_only(self.archive)
        return [], {"manifest_sha256": hashlib.sha256(m).hexdigest(), "files": len(written)}

    def step_delete(self, progress: Progress) -> tuple[list, dict]:
        paths = layout(self.state)
        deleted = []
        for what, root in (
            ("extract", paths["project_data"] / self.project),
            ("homes", self.state / "homes" / self.project),
            ("shared folder", self.state / "shared" / self.project),
        ):
            deleted.append(measure(what, root))
            if root.exists():
                shutil.rmtree(root)
        deleted.append(self._delete_unreleased_blobs())
        deleted.append(self._destroy_keys(paths["keys"]))
        deleted.append(self._delete_bucket())
        return deleted, {}

    def _delete_bucket(self) -> Deleted:
        store = running_s3_store(os.environ)
        what = "S3 bucket and credential"
        if store is None:
            return Deleted(what, f"cloisonne-{self.project}", note="no S3 store on this platform")
        gone = store.delete_project(self.project)
        objects = gone["objects"]
        return Deleted(what, gone["bucket"], len(objects), sum(o["bytes"] for o in objects),
                       tree_digest((o["key"], o["etag"]) for o in objects),
                       note="object ETags (MD5 of single-part uploads); bucket, identity and "
                            "credential deleted" if gone["existed"] else "no bucket")  # fmt: skip

    def _delete_unreleased_blobs(self) -> Deleted:
        airlock = self._airlock()
        mine, kept = set(), set()
        for stored in airlock.repo.in_states(State):
            r = stored.request
            for f in r.files:
                if r.project == self.project and r.state is not State.RELEASED:
                    mine.add(f.sha256)
                else:
                    kept.add(f.sha256)  # released (archived) or another project's: kept
        gone = sorted(mine - kept)
        entries, total = [], 0
        for digest in gone:
            path = airlock.blobs.path(digest)
            if path.exists():
                total += path.stat().st_size
                entries.append((digest, _file_sha256(path)))
                os.chmod(path, 0o600)
                path.unlink()
        return Deleted("unreleased airlock files", str(self.airlock_dir), len(entries), total,
                       tree_digest(entries))  # fmt: skip

    def _destroy_keys(self, keys_dir: Path) -> Deleted:
        from ..keys.settings import KeySettings

        if not keys_dir.exists():
            return Deleted("pseudonymisation key", str(keys_dir), note="no key store")
        service = KeySettings.from_env(os.environ).service(keys_dir)
        if self.project not in service.projects():
            return Deleted("pseudonymisation key", str(keys_dir), note="the project had no key")
        record = service.destroy(self.project)
        digests = sorted(k["wrapped_sha256"] for k in record["keys"].values())
        return Deleted(
            "pseudonymisation key",
            str(keys_dir),
            len(digests),
            0,
            tree_digest((d, d) for d in digests),
            note=f"crypto-shredded; masters destroyed {record['destroyed_masters']}",
        )

    def step_certify(self, progress: Progress) -> tuple[list, dict]:
        head = self.store.head()
        cert = certificate(progress, audit_head={"seq": head.seq, "hash": head.hash},
                           archive_sha256=progress.results["archive"]["manifest_sha256"],
                           now=_now())  # fmt: skip
        data = json.dumps(cert, indent=1).encode()
        path = self.state / "archive" / f"{self.project}.deletion-certificate.json"
        path.write_bytes(data)
        os.chmod(path, 0o444)
        self.store.append("lifecycle.closed", user=progress.by, project=self.project,
                          fields={"certificate_sha256": hashlib.sha256(data).hexdigest(),
                                  "files_deleted": cert["totals"]["files"],
                                  "bytes_deleted": cert["totals"]["bytes"]})  # fmt: skip
        return [], {"certificate": str(path)}


def _event_dict(e: Any) -> dict[str, Any]:
    return {"seq": e.seq, "time": e.time, "type": e.type, "user": e.user, "project": e.project,
            "fields": dict(e.fields), "prev_hash": e.prev_hash, "hash": e.hash}  # fmt: skip


def _make_read_only(root: Path) -> None:
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            os.chmod(Path(dirpath, name), 0o444)
    for dirpath, _dirs, _names in sorted(os.walk(root), key=lambda t: -len(t[0])):
        os.chmod(dirpath, 0o555)


def _make_writable(root: Path) -> None:
    for dirpath, _dirs, names in os.walk(root):
        os.chmod(dirpath, stat.S_IRWXU)
        for name in names:
            os.chmod(Path(dirpath, name), 0o600)


def verify_archive(archive: Path) -> list[str]:
    """Problems found in an archive ([] when every file matches its manifest entry)."""
    m = json.loads((archive / "manifest.json").read_text())
    problems = []
    for name, entry in m["files"].items():
        path = archive / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif _file_sha256(path) != entry["sha256"]:
            problems.append(f"{name}: SHA-256 differs")
    listed = set(m["files"]) | {"manifest.json"}
    extra = [str(p.relative_to(archive)) for p in _files(archive)
             if str(p.relative_to(archive)) not in listed]  # fmt: skip
    return problems + [f"{name}: not in the manifest" for name in extra]
