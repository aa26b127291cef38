"""The two keepers of the site master key, behind one small interface.

A keeper holds numbered master keys (v1, v2, ...) and wraps and unwraps 256-bit keys with one
of them (AES key wrap, RFC 3394: the wrapped form carries its own integrity check, so a
tampered or foreign blob is refused, never unwrapped to garbage). ``Pkcs11Keeper`` keeps them
as non-extractable token objects (SoftHSM2 in development and tests, the same code against a
hardware HSM); ``FileKeeper`` keeps them in 0600 files, for development only. Retiring a
version destroys it, so every copy of a key wrapped under it (backups included) is dead.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

KEY_BYTES = 32
MASTER_LABEL = "cloisonne-master-v{}"
_VERSION = re.compile(r"^cloisonne-master-v(\d+)$")


class KeyError_(RuntimeError):
    """A key operation failed: the message says which key and why."""


class MasterKeeper(Protocol):
    def versions(self) -> list[int]: ...
    def create(self, version: int) -> None: ...
    def destroy(self, version: int) -> None: ...
    def wrap(self, version: int, key: bytes) -> bytes: ...
    def unwrap(self, version: int, wrapped: bytes) -> bytes: ...
    def random_key(self) -> bytes: ...
    def describe(self) -> str: ...


class FileKeeper:
    """Master keys in ``<folder>/master-v<N>.key`` (0600, in a 0700 folder). Development only:
    whoever reads the folder has the master key."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def describe(self) -> str:
        return f"file keyring {self.folder} (development only)"

    def _path(self, version: int) -> Path:
        return self.folder / f"master-v{version}.key"

    def versions(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        found = (re.match(r"^master-v(\d+)\.key$", p.name) for p in self.folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def create(self, version: int) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        fd = os.open(self._path(version), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
            f.flush()
            os.fsync(f.fileno())

    def destroy(self, version: int) -> None:
        path = self._path(version)
        if path.exists():  # overwrite before unlinking: no copy left in the file's blocks
            with open(path, "r+b") as f:
                f.write(b"\0" * KEY_BYTES)
                f.flush()
                os.fsync(f.fileno())
            path.unlink()

    def _master(self, version: int) -> bytes:
        path = self._path(version)
        if not path.exists():
            raise KeyError_(f"master v{version} is not in {self.folder} (destroyed)")
        if path.stat().st_mode & 0o077:
            raise KeyError_(f"{path} is readable by group or others: refusing to use it")
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise KeyError_(f"{path} holds {len(key)} bytes, expected {KEY_BYTES}")
        return key

    def wrap(self, version: int, key: bytes) -> bytes:
        from cryptography.hazmat.primitives.keywrap import aes_key_wrap

        return aes_key_wrap(self._master(version), key)

    def unwrap(self, version: int, wrapped: bytes) -> bytes:
        from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap

        try:
            return aes_key_unwrap(self._master(version), wrapped)
        except InvalidUnwrap:
            raise KeyError_(f"the key does not unwrap under master v{version}") from None

    def random_key(self) -> bytes:
        return secrets.token_bytes(KEY_BYTES)


class Pkcs11Keeper:
    """Master keys as AES-256 token objects labelled ``cloisonne-master-v<N>``, generated in the
    token, sensitive and non-extractable: their value never crosses the PKCS#11 interface."""

    def __init__(self, module: str, token_label: str, pin: str):
        self.module, self.token_label, self.pin = module, token_label, pin

    def describe(self) -> str:
        return f"PKCS#11 token {self.token_label!r} ({self.module})"

    @contextmanager
    def _session(self) -> Iterator[Any]:
        import pkcs11

        try:
            token = pkcs11.lib(self.module).get_token(token_label=self.token_label)
        except pkcs11.exceptions.NoSuchToken:
            raise KeyError_(
                f"no PKCS#11 token labelled {self.token_label!r} in {self.module}"
            ) from None
        try:
            with token.open(user_pin=self.pin, rw=True) as session:
                yield session
        except pkcs11.exceptions.PinIncorrect:
            raise KeyError_(f"the PIN for token {self.token_label!r} is wrong") from None

    def _masters(self, session: Any) -> dict[int, Any]:
        from pkcs11 import Attribute, ObjectClass

        found = {}
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}):
            m = _VERSION.match(obj.label or "")
            if m:
                found[int(m.group(1))] = obj
        return found

    def _master(self, session: Any, version: int) -> Any:
        master = self._masters(session).get(version)
        if master is None:
            raise KeyError_(f"master v{version} is not in token {self.token_label!r}")
        return master

    def versions(self) -> list[int]:
        with self._session() as session:
            return sorted(self._masters(session))

    def create(self, version: int) -> None:
        from pkcs11 import Attribute, KeyType

        with self._session() as session:
            session.generate_key(KeyType.AES, 8 * KEY_BYTES, label=MASTER_LABEL.format(version),
                                 store=True, template={
                                     Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                                     Attribute.WRAP: True, Attribute.UNWRAP: True,
                                     Attribute.ENCRYPT: False, Attribute.DECRYPT: False,
                                 })  # fmt: skip

    def destroy(self, version: int) -> None:
        with self._session() as session:
            master = self._masters(session).get(version)
            if master is not None:
                master.destroy()

    def wrap(self, version: int, key: bytes) -> bytes:
        from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

        with self._session() as session:
            session_key = session.create_object({
                Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                Attribute.VALUE: key, Attribute.TOKEN: False, Attribute.EXTRACTABLE: True,
            })  # fmt: skip
            try:
                return self._master(session, version).wrap_key(
                    session_key, mechanism=Mechanism.AES_KEY_WRAP
                )
            finally:
                session_key.destroy()

    def unwrap(self, version: int, wrapped: bytes) -> bytes:
        import pkcs11
        from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

        with self._session() as session:
            try:
                key = self._master(session, version).unwrap_key(
                    ObjectClass.SECRET_KEY, KeyType.AES, wrapped,
                    mechanism=Mechanism.AES_KEY_WRAP, store=False,
                    template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: False},
                )  # fmt: skip
            except pkcs11.exceptions.PKCS11Error:
                raise KeyError_(f"the key does not unwrap under master v{version}") from None
            try:
                return bytes(key[Attribute.VALUE])
            finally:
                key.destroy()

    def random_key(self) -> bytes:
        with self._session() as session:
            return bytes(session.generate_random(8 * KEY_BYTES))
