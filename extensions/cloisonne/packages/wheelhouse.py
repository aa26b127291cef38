"""The air-gapped site's packages: a folder of wheels (and sdists) the site loads by command.

``cloisonne packages add numpy==2.1.3 --from-dir wheels/`` copies the files of that release from
a folder brought in from outside into ``<state>/packages/wheelhouse/<name>/`` and records each
file's SHA-256, which the proxy gives pip in the index page and writes into the audit log.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..core.packages import DistFile, parse_filename

HASHES = "sha256.json"


class WheelhouseError(ValueError):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Wheelhouse:
    root: Path

    def folder(self, name: str) -> Path:
        return self.root / canonicalize_name(name)

    def hashes(self, name: str) -> dict[str, str]:
        try:
            return json.loads((self.folder(name) / HASHES).read_text())
        except FileNotFoundError:
            return {}

    def files(self, name: str) -> list[tuple[DistFile, str]]:
        """The files of ``name`` with their SHA-256 (empty if the site has none)."""
        hashes = self.hashes(name)
        out = []
        for filename, sha in sorted(hashes.items()):
            dist = parse_filename(filename)
            if dist is not None and (self.folder(name) / filename).is_file():
                out.append((dist, sha))
        return out

    def path(self, name: str, filename: str) -> Path | None:
        if filename not in self.hashes(name):
            return None
        return self.folder(name) / filename

    def add(self, requirement: str, from_dir: Path) -> list[str]:
        """Copy the files of ``requirement`` (``name`` or ``name==version``, a range works too)
        found in ``from_dir``; returns the names of the files added."""
        try:
            req = Requirement(requirement)
        except InvalidRequirement as exc:
            raise WheelhouseError(f"{requirement!r}: not a requirement such as 'numpy==2.1.3' "
                                  f"({exc})") from None  # fmt: skip
        if not from_dir.is_dir():
            raise WheelhouseError(f"{from_dir}: no such folder")
        name = canonicalize_name(req.name)
        matches = []
        for path in sorted(from_dir.iterdir()):
            dist = parse_filename(path.name)
            if dist and dist.name == name and req.specifier.contains(dist.version, True):
                matches.append(path)
        if not matches:
            raise WheelhouseError(f"no file of {requirement} in {from_dir}")
        folder = self.folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        hashes = self.hashes(name)
        for path in matches:
            tmp = folder / f".{path.name}.part"
            shutil.copyfile(path, tmp)
            hashes[path.name] = sha256_of(tmp)
            tmp.replace(folder / path.name)
        tmp = folder / f".{HASHES}.part"
        tmp.write_text(json.dumps(hashes, indent=1, sort_keys=True))
        tmp.replace(folder / HASHES)
        return [p.name for p in matches]
