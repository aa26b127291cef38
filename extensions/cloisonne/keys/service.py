"""Per-project keys, stored only wrapped by the site master key, rotated and destroyed.

Each project has a few named keys (``pseudonymisation``, ``storage``...), each a random 256-bit
key wrapped by one master version, in ``<store>/projects/<project>.json``. Rotating creates a
new master version, re-wraps every project key under it (the keys themselves, and so the data
they protect, do not change) and then destroys the old versions. Destroying a project's keys
(close-out) deletes its file and rotates, so a copy of the file kept anywhere (a backup) no
longer unwraps: this is what the deletion certificate relies on (crypto-shredding).

A rotation interrupted half-way is finished by the next one: keys record the version they
are wrapped under, and old versions are destroyed only after every key moved.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..core.projects import PROJECT_ID
from .masters import KeyError_, MasterKeeper

PURPOSE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


@dataclass(frozen=True)
class Rotation:
    master: int
    rewrapped: int
    destroyed: list[int]


class KeyService:
    def __init__(self, keeper: MasterKeeper, store: str | Path):
        self.keeper = keeper
        self.store = Path(store)

    # -- storage of wrapped keys ------------------------------------------------------------

    def _path(self, project: str) -> Path:
        if not PROJECT_ID.match(project):
            raise KeyError_(f"invalid project id {project!r}")
        return self.store / "projects" / f"{project}.json"

    def _load(self, project: str) -> dict[str, dict]:
        path = self._path(project)
        if not path.exists():
            return {}
        return json.loads(path.read_text())["keys"]

    def _save(self, project: str, keys: dict[str, dict]) -> None:
        path = self._path(project)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"project": project, "keys": keys}, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def projects(self) -> list[str]:
        folder = self.store / "projects"
        return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []

    # -- master versions --------------------------------------------------------------------

    def master(self) -> int:
        """The current master version, created (v1) on first use."""
        versions = self.keeper.versions()
        if not versions:
            self.keeper.create(1)
            return 1
        return versions[-1]

    # -- project keys -----------------------------------------------------------------------

    def key(self, project: str, purpose: str, *, create: bool = True) -> bytes:
        """The project's key for ``purpose``, generated on first use when ``create``."""
        if not PURPOSE.match(purpose):
            raise KeyError_(f"invalid key purpose {purpose!r}")
        keys = self._load(project)
        entry = keys.get(purpose)
        if entry is None:
            if not create:
                raise KeyError_(f"project {project!r} has no {purpose} key")
            return self._add(project, purpose, self.keeper.random_key())
        return self.keeper.unwrap(entry["master"], bytes.fromhex(entry["wrapped"]))

    def import_key(self, project: str, purpose: str, key: bytes) -> None:
        """Take an existing key (e.g. a pseudonymisation key from a 0600 file) under the
        master, so pseudonyms made before stay the same."""
        if purpose in self._load(project):
            raise KeyError_(f"project {project!r} already has a {purpose} key")
        self._add(project, purpose, key)

    def _add(self, project: str, purpose: str, key: bytes) -> bytes:
        version = self.master()
        keys = self._load(project)
        keys[purpose] = {"master": version, "wrapped": self.keeper.wrap(version, key).hex(),
                         "created": _now()}  # fmt: skip
        self._save(project, keys)
        return key

    def rotate(self) -> Rotation:
        """New master version, every project key re-wrapped under it, old versions destroyed.
        Resumes an interrupted rotation instead of starting another."""
        versions = self.keeper.versions()
        if len(versions) == 1 or not versions:
            target = (versions[-1] if versions else 0) + 1
            self.keeper.create(target)
        else:
            target = versions[-1]
        rewrapped = 0
        for project in self.projects():
            keys = self._load(project)
            for entry in keys.values():
                if entry["master"] != target:
                    key = self.keeper.unwrap(entry["master"], bytes.fromhex(entry["wrapped"]))
                    entry["master"], entry["wrapped"] = target, self.keeper.wrap(target, key).hex()
                    rewrapped += 1
            self._save(project, keys)
        old = [v for v in self.keeper.versions() if v != target]
        for version in old:
            self.keeper.destroy(version)
        return Rotation(master=target, rewrapped=rewrapped, destroyed=old)

    def destroy(self, project: str) -> dict:
        """Crypto-shred the project's keys: its file deleted, then a rotation, so the master
        its keys were wrapped under no longer exists. Returns what a certificate records."""
        path = self._path(project)
        keys = self._load(project)
        record = {
            "project": project,
            "keys": {purpose: {"master": e["master"], "wrapped_sha256": _sha256(e["wrapped"])}
                     for purpose, e in sorted(keys.items())},
            "keeper": self.keeper.describe(),
        }  # fmt: skip
        if path.exists():
            with open(path, "r+b") as f:  # overwrite, then unlink
                f.write(b"\0" * path.stat().st_size)
                f.flush()
                os.fsync(f.fileno())
            path.unlink()
        rotation = self.rotate()
        record.update(destroyed_masters=rotation.destroyed, master_now=rotation.master,
                      destroyed_at=_now())  # fmt: skip
        return record

    def status(self) -> dict:
        return {
            "keeper": self.keeper.describe(),
            "masters": self.keeper.versions(),
            "projects": {p: {purpose: e["master"] for purpose, e in self._load(p).items()}
                         for p in self.projects()},
        }  # fmt: skip


def _sha256(hex_blob: str) -> str:
    return hashlib.sha256(bytes.fromhex(hex_blob)).hexdigest()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
