"""Content-addressed storage of submitted files, in a folder only the service can read.

A file is stored under its SHA-256 (``<root>/<aa>/<sha256>``), written to a temporary file in
the same folder tree, flushed to disk (fsync) and renamed into place: a reader never sees a
half-written file, and a service killed mid-write leaves only a temporary file, removed at the
next start. Stored files are read-only (0400) in folders of mode 0700; workspaces never mount
this folder. The same content submitted twice is stored once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from .model import SHA256


class StorageError(RuntimeError):
    pass


class BlobStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        for folder in (self.root, self.tmp):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(folder, 0o700)

    def clean_partial(self) -> int:
        """Remove temporary files left by a service killed mid-write; return how many."""
        removed = 0
        for leftover in self.tmp.iterdir():
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed

    def path(self, sha256: str) -> Path:
        if not SHA256.match(sha256):
            raise StorageError(f"not a SHA-256: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data``; return its SHA-256. Returns only once the bytes are on disk."""
        digest = hashlib.sha256(data).hexdigest()
        final = self.path(digest)
        if final.is_file():
            return digest
        final.parent.mkdir(mode=0o700, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix=digest[:8] + ".")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp_name, 0o400)
            os.rename(tmp_name, final)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a crash
        finally:
            os.close(dir_fd)
        return digest

    def read(self, sha256: str) -> bytes:
        """The stored bytes, checked against their name: a file altered on disk is refused."""
        try:
            data = self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise StorageError(f"file {sha256} is not in the store") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise StorageError(f"stored file {sha256} no longer matches its SHA-256")
        return data
