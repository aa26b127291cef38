"""The one choke point for file bytes: /files/, /api/contents (and nbconvert, which is closed)
all read through this contents manager, which decides, audits, then serves."""

from __future__ import annotations

import contextvars
import functools
import hashlib
import os
import stat
from typing import Any

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web

from .policy import Decision, decide_read, decide_upload

# Set by the guarded /files/ handler so that a read knows it is a download, not the editor.
ROUTE = contextvars.ContextVar("cloisonne_route", default="contents")


class GuardedContentsManager(AsyncLargeFileManager):
    """AsyncLargeFileManager whose reads and writes are checked and audited by the guard."""

    @property
    def guard(self) -> Any:
        return self.parent.web_app.settings["cloisonne_guard"]

    def _resolve_inside(self, path: str) -> str:
        """The real path of ``path``; refuse anything that resolves outside the workspace root
        (symlinks to /data, /shared or elsewhere)."""
        os_path = self._get_os_path(path)
        root = _realpath(self.root_dir)
        real = os.path.realpath(os_path)
        if real != root and not real.startswith(root + os.sep):
            raise web.HTTPError(403, f"{path} resolves outside the workspace folder")
        return real

    async def get(self, path: str, content: bool = True, type: str | None = None,
                  format: str | None = None, **kwargs: Any) -> dict:  # fmt: skip
        if not content:  # metadata only (also how directory listings describe each entry)
            return await super().get(path, content=False, type=type, format=format, **kwargs)
        route = ROUTE.get()
        try:
            real = self._resolve_inside(path)
        except web.HTTPError as exc:
            await self.guard.record("guard.read", route, path, Decision.deny(exc.log_message))
            raise
        info = os.stat(real)
        if stat.S_ISDIR(info.st_mode):
            return await super().get(path, content=content, type=type, format=format, **kwargs)
        size = info.st_size
        settings = self.guard.settings
        # One pass over the bytes: whether they are text and, when they may be served at all,
        # their hash for the audit event.
        servable = size <= max(settings.max_text_bytes, settings.max_image_bytes)
        is_text, sha256 = _inspect(real, hash_all=servable)
        if type != "notebook" and format is None and not path.endswith(".ipynb"):
            # What the contents API would choose: text when it decodes, else base64.
            format = "text" if is_text else "base64"
        decision = decide_read(route, path, format, size, settings)
        if not decision.allowed:
            await self.guard.record("guard.read", route, path, decision, size=size)
            raise web.HTTPError(decision.status, decision.reason)
        model = await super().get(path, content=content, type=type, format=format, **kwargs)
        await self.guard.record("guard.read", route, path, decision, size=size, sha256=sha256)
        self.guard.meter.add("contents", size)
        return model

    async def save(self, model: dict, path: str = "") -> dict:
        """Uploads (imports) are recorded with their size and SHA-256 once complete; an upload
        over the size cap, or one that cannot be recorded, is removed."""
        parent = os.path.dirname(path.strip("/"))
        self._resolve_inside(parent)  # no writing through a symlinked folder
        if os.path.islink(self._get_os_path(path)):
            raise web.HTTPError(403, f"{path} is a symbolic link; it cannot be written through")
        chunk = model.get("chunk")
        result = await super().save(model, path)
        if model.get("type") != "file":
            return result
        real = self._get_os_path(path)
        size = os.path.getsize(real)
        decision = decide_upload(path, size, self.guard.settings)
        if not decision.allowed:
            os.unlink(real)
            await self.guard.record("guard.import", "contents", path, decision, size=size)
            raise web.HTTPError(decision.status, decision.reason)
        if chunk is None or chunk == -1:  # the upload is complete
            try:
                await self.guard.record("guard.import", "contents", path, decision, size=size,
                                        sha256=_sha256(real))  # fmt: skip
            except web.HTTPError:
                os.unlink(real)
                raise
        return result


@functools.lru_cache(maxsize=8)
def _realpath(root: str) -> str:
    """The workspace root's real path: fixed for the server's life, and resolving it costs a
    system call per component on every read."""
    return os.path.realpath(root)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _inspect(path: str, hash_all: bool, probe: int = 8192) -> tuple[bool, str | None]:
    """(looks like UTF-8 text, SHA-256 of the whole file or None) in one read."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        head = f.read(probe)
        digest.update(head)
        if hash_all:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return _is_text(head), digest.hexdigest() if hash_all else None


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the probe's end is still text
        return exc.start >= len(head) - 3 and b"\0" not in head
    return b"\0" not in head
