"""Per-project pseudonymisation keys, kept hub side under the site's key service.

The key never enters a workspace (only pseudonyms do), so researchers cannot recompute or
reverse pseudonyms, and a project's key is never reused for another project. It is stored only
wrapped by the site master key (``cloisonne.keys``: an HSM through PKCS#11, or the development
file keyring), and destroyed with the project's other keys at close-out, after which its
pseudonyms can never be re-linked. A key from an earlier version (``<keys_dir>/<project>.key``,
0600 hex) is taken under the master on first use and its file shredded, so pseudonyms stay.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..core.projects import PROJECT_ID
from ..keys.masters import KeyError_
from ..keys.settings import KeySettings

KEY_BYTES = 32
PURPOSE = "pseudonymisation"


class KeyFileError(PermissionError):
    """A key is missing, malformed, refused by the key service or readable by others."""


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


def _legacy_key(path: Path) -> bytes:
    _check_private(path, directory=False)
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise KeyFileError(f"{path} does not hold a hex key") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{path} holds {len(key)} bytes, expected {KEY_BYTES}")
    return key


def project_key(keys_dir: str | Path, project_id: str, *, create: bool = True) -> bytes:
    """The project's pseudonymisation key, created (random, 256 bits) on first use."""
    if not PROJECT_ID.match(project_id):
        raise ValueError(f"invalid project id {project_id!r}")
    keys_dir = Path(keys_dir)
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(keys_dir, directory=True)
    try:
        service = KeySettings.from_env(os.environ).service(keys_dir)
        legacy = keys_dir / f"{project_id}.key"
        if legacy.exists():
            service.import_key(project_id, PURPOSE, _legacy_key(legacy))
            with open(legacy, "r+b") as f:  # the key now lives only wrapped
                f.write(b"\0" * legacy.stat().st_size)
                f.flush()
                os.fsync(f.fileno())
            legacy.unlink()
        return service.key(project_id, PURPOSE, create=create)
    except KeyError_ as exc:
        raise KeyFileError(str(exc)) from None
