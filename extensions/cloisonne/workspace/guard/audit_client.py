"""The guard's link to the audit log: every decision is appended before anything is served.

If the cloisonne service cannot be reached the guard answers 503: nothing is served
unaudited.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from tornado import web

UNAVAILABLE = (
    "The audit service cannot be reached, so this request cannot be recorded and is refused. "
    "Try again in a moment; if it persists, tell your administrator."
)


class AuditUnavailable(web.HTTPError):
    def __init__(self, detail: str):
        super().__init__(503, log_message=UNAVAILABLE)
        self.detail = detail


class AuditClient:
    """Appends events over one kept-alive HTTP/1.1 connection to the service (an append is on
    the path of every guarded read, so no connection set-up per event)."""

    def __init__(self, service_url: str | None = None, token: str | None = None,
                 timeout: float = 10.0):  # fmt: skip
        self.url = (service_url or os.environ.get("CLOISONNE_SERVICE_URL", "")) + "api/audit/events"
        self.token = token or os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.timeout = timeout
        parts = urlsplit(self.url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._path = parts.path
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._lock = asyncio.Lock()

    async def append(self, event_type: str, **fields: Any) -> dict:
        """Append one event and wait for the service to confirm it; raise AuditUnavailable."""
        return (await self.append_many([(event_type, fields)]))[0]

    async def append_many(self, events: list[tuple[str, dict[str, Any]]]) -> list[dict]:
        body = json.dumps([{"type": t, "fields": f} for t, f in events]).encode()
        async with self._lock:
            for attempt in (1, 2):  # a kept-alive connection may have been closed meanwhile
                try:
                    status, payload = await asyncio.wait_for(self._post(body), self.timeout)
                    break
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                    self._close()
                    if attempt == 2:
                        raise AuditUnavailable(str(exc) or type(exc).__name__) from None
        if status != 201:
            raise AuditUnavailable(f"service answered {status}: {payload[:200]!r}")
        return json.loads(payload)["events"]

    def append_now(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Blocking append, for use before the server's event loop runs."""
        request = urllib.request.Request(
            self.url, method="POST",
            data=json.dumps([{"type": t, "fields": f} for t, f in events]).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=self.timeout):
            pass

    async def _post(self, body: bytes) -> tuple[int, bytes]:
        if self._conn is None:
            self._conn = await asyncio.open_connection(self._host, self._port)
        status, payload, close = await http_exchange(
            *self._conn, "POST", self._path, f"{self._host}:{self._port}", body,
            {"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )  # fmt: skip
        if close:
            self._close()
        return status, payload

    def _close(self) -> None:
        if self._conn is not None:
            self._conn[1].close()
            self._conn = None


async def http_exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    method: str,
    path: str,
    host: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 request on a kept-alive connection: (status, body, server closes).

    Hand-written because it sits on the path of every guarded read: a general client's
    per-request set-up cost as much as the service's work."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}",
             "Connection: keep-alive"]  # fmt: skip
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()
    status = int((await reader.readuntil(b"\r\n")).split()[1])
    length, close = 0, False
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "connection" and value.strip().lower() == "close":
            close = True
    return status, await reader.readexactly(length), close
