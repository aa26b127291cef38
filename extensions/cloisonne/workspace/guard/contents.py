"""The one choke point for file bytes: /files/, /api/contents (and nbconvert, which is closed)
all read through this contents manager, which decides, audits, then serves."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import os
import stat
import time
from typing import Any

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web

from ...audit.events import GUARD_COPY, GUARD_IMPORT, GUARD_READ, GUARD_RENAME
from .abandon import remove as _remove
from .abandon import sweep_abandoned
from .policy import Decision, decide_read, decide_upload
from .uploads import UploadLedger, incoming_bytes

# Set by the guarded /files/ handler so that a read knows it is a download, not the editor.
ROUTE = contextvars.ContextVar("cloisonne_route", default="contents")
# Set while a copy reads and writes through get() and save(): the copy is its own event.
INTERNAL = contextvars.ContextVar("cloisonne_internal", default=False)


class GuardedContentsManager(AsyncLargeFileManager):
    """AsyncLargeFileManager whose reads and writes are checked and audited by the guard."""

    @property
    def guard(self) -> Any:
        return self.parent.web_app.settings["cloisonne_guard"]

    @property
    def uploads(self) -> UploadLedger:
        if not hasattr(self, "_uploads"):
            self._uploads = UploadLedger()
            self._sweeper: asyncio.Task | None = None
        return self._uploads

    def _resolve_inside(self, path: str) -> str:
        """The real path of ``path``; refuse anything that resolves outside the workspace root
        (symlinks to /data, /shared or elsewhere)."""
        os_path = self._get_os_path(path)
        root = _realpath(self.root_dir)
        real = os.path.realpath(os_path)
        if real != root and not real.startswith(root + os.sep):
            raise web.HTTPError(403, f"{path} resolves outside the workspace folder")
        return real

    def _no_links_out(self, path: str, real: str) -> None:
        """Refuse a folder holding a symbolic link that leads out of the workspace: copying it
        would turn the link into a plain file with the target's bytes (from /data, say)."""
        if not os.path.isdir(real):
            return
        root = _realpath(self.root_dir)
        for folder, dirs, files in os.walk(real):
            for name in dirs + files:
                target = os.path.realpath(os.path.join(folder, name))
                if target != root and not target.startswith(root + os.sep):
                    inner = os.path.relpath(os.path.join(folder, name), real)
                    raise web.HTTPError(403, f"{path} holds {inner}, a link that leads outside "
                                        "the workspace folder; it cannot be copied")  # fmt: skip

    async def get(self, path: str, content: bool = True, type: str | None = None,
                  format: str | None = None, **kwargs: Any) -> dict:  # fmt: skip
        # metadata only (also how listings describe each entry), or a copy's read (its event)
        if not content or INTERNAL.get():
            return await super().get(path, content=content, type=type, format=format, **kwargs)
        route = ROUTE.get()
        try:
            real = self._resolve_inside(path)
        except web.HTTPError as exc:
            await self.guard.record(GUARD_READ, route, path, Decision.deny(exc.log_message))
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
            await self.guard.record(GUARD_READ, route, path, decision, size=size)
            raise web.HTTPError(decision.status, decision.reason)
        model = await super().get(path, content=content, type=type, format=format, **kwargs)
        await self.guard.record(GUARD_READ, route, path, decision, size=size, sha256=sha256)
        self.guard.meter.add("contents", size)
        return model

    async def save(self, model: dict, path: str = "") -> dict:
        """Every PUT (file, notebook, directory, each chunk) is capped and recorded. A single
        PUT or a chunked upload's first chunk is checked before a byte is written; a chunk
        that takes the running total over the cap removes the partial file. A notebook, a
        directory and an upload's first chunk are recorded before they are written, a file
        once complete (with its SHA-256): when the record cannot be made nothing stays
        written."""
        path = path.strip("/")
        parent = os.path.dirname(path)
        self._resolve_inside(parent)  # no writing through a symlinked folder
        real = self._get_os_path(path)
        if os.path.islink(real):
            raise web.HTTPError(403, f"{path} is a symbolic link; it cannot be written through")
        if INTERNAL.get():  # the second half of a copy: recorded as guard.copy
            return await super().save(model, path)
        kind, chunk = model.get("type"), model.get("chunk")
        incoming = incoming_bytes(model)
        on_disk = os.path.getsize(real) if chunk and os.path.isfile(real) else 0
        before = self.uploads.total_before(path, chunk, on_disk) if chunk else 0
        total = before + incoming
        decision = decide_upload(path, total, self.guard.settings)
        fields = {"type": kind, "chunk": chunk}
        if not decision.allowed:
            if chunk not in (None, 1):  # the partial file of an upload now refused
                _remove(real)
            self.uploads.finish(path)
            await self.guard.record(GUARD_IMPORT, "contents", path, decision, size=total,
                                    **fields)  # fmt: skip
            raise web.HTTPError(decision.status, decision.reason)
        if kind != "file" or chunk == 1:  # notebook, directory, an upload's start: recorded
            # first, then written (the chunks between are counted, the last one recorded)
            await self.guard.record(GUARD_IMPORT, "contents", path, decision, size=total,
                                    **fields)  # fmt: skip
            if kind != "file":
                return await super().save(model, path)
        result = await super().save(model, path)
        if chunk is not None and chunk != -1:
            self.uploads.received(path, total, time.monotonic())
            self._sweep_soon()
            return result
        self.uploads.finish(path)
        try:
            await self.guard.record(GUARD_IMPORT, "contents", path, decision, size=total,
                                    sha256=_sha256(real), **fields)  # fmt: skip
        except web.HTTPError:
            _remove(real)
            raise
        return result

    async def copy(self, from_path: str, to_path: str | None = None) -> dict:
        """A copy is recorded with where it came from; if it cannot be, the copy is removed."""
        source = from_path.strip("/")
        try:
            real = self._resolve_inside(source)
            self._no_links_out(source, real)
            if to_path is not None:
                self._resolve_inside(os.path.dirname(to_path.strip("/")))
        except web.HTTPError as exc:
            await self.guard.record(GUARD_COPY, "contents", to_path or "", Decision.deny(
                exc.log_message), **{"from": source})  # fmt: skip
            raise
        token = INTERNAL.set(True)
        try:
            model = await super().copy(from_path, to_path)
        finally:
            INTERNAL.reset(token)
        size = _tree_size(real)
        try:
            await self.guard.record(GUARD_COPY, "contents", model["path"], Decision.allow(
                "copy inside the workspace"), size=size, **{"from": source})  # fmt: skip
        except web.HTTPError:
            _remove(self._get_os_path(model["path"]))
            raise
        return model

    async def rename(self, old_path: str, new_path: str) -> None:
        """A rename or move is recorded; if it cannot be, it is undone."""
        old, new = old_path.strip("/"), new_path.strip("/")
        try:
            self._resolve_inside(os.path.dirname(new))
            self._resolve_inside(os.path.dirname(old))
        except web.HTTPError as exc:
            await self.guard.record(GUARD_RENAME, "contents", new, Decision.deny(
                exc.log_message), **{"from": old})  # fmt: skip
            raise
        await super().rename(old_path, new_path)
        try:
            await self.guard.record(GUARD_RENAME, "contents", new, Decision.allow(
                "rename inside the workspace"), **{"from": old})  # fmt: skip
        except web.HTTPError:
            await super().rename(new_path, old_path)
            raise

    def _sweep_soon(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep())

    async def _sweep(self) -> None:
        """While chunked uploads are open: remove those abandoned, and record each (retried
        until the audit log takes it; the partial file is gone either way)."""
        while len(self.uploads):
            await asyncio.sleep(self.guard.abandon_check_seconds)
            await sweep_abandoned(self, self.guard)


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


def _tree_size(path: str) -> int:
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
               for f in files if not os.path.islink(os.path.join(d, f)))  # fmt: skip
