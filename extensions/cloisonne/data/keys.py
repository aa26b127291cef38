"""Per-project pseudonymisation keys, kept hub side: ``<keys_dir>/<project>.key``, 0600.

The key never enters a workspace (only pseudonyms do), so researchers cannot recompute or
reverse pseudonyms, and a project's key is never reused for another project. Losing a key
means the next provisioning gives new pseudonyms: keep the keys directory in the hub's backup.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from ..core.projects import PROJECT_ID

KEY_BYTES = 32


class KeyFileError(PermissionError):
    """A key file is missing, malformed or readable by others."""


def _check_private(path: Path, *, directory: bool) -> None:
    info = path.stat()
    if info.st_mode & 0o077:
        raise KeyFileError(
            f"{path} is accessible to group/others (mode {stat.filemode(info.st_mode)})"
        )
    if info.st_uid != os.geteuid():
        raise KeyFileError(f"{path} is not owned by uid {os.geteuid()}")
    if directory != stat.S_ISDIR(info.st_mode):
        raise KeyFileError(f"{path} is not a {'directory' if directory else 'regular file'}")


def project_key(keys_dir: str | Path, project_id: str, *, create: bool = True) -> bytes:
    """The project's key, created (random, 256 bits) on first use."""
    if not PROJECT_ID.match(project_id):
        raise ValueError(f"invalid project id {project_id!r}")
    keys_dir = Path(keys_dir)
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(keys_dir, directory=True)
    path = keys_dir / f"{project_id}.key"
    if not path.exists():
        if not create:
            raise KeyFileError(f"no key for project {project_id!r} in {keys_dir}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            pass  # another provisioner created it meanwhile: read theirs
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(KEY_BYTES) + "\n")
                f.flush()
                os.fsync(f.fileno())
    _check_private(path, directory=False)
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise KeyFileError(f"{path} does not hold a hex key") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{path} holds {len(key)} bytes, expected {KEY_BYTES}")
    return key
