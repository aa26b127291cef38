"""Outflow meter: bytes sent to the browser over kernel and terminal websockets and contents
reads, reported to the audit log in batches. The service adds them up per project and day and
raises the budget alert."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

log = logging.getLogger("cloisonne.guard")


class OutflowMeter:
    def __init__(self, record: Any, flush_every: float = 5.0, flush_bytes: int = 1 << 20):
        self._record = record  # async (channel_counts) -> None
        self.pending: Counter[str] = Counter()
        self.total: Counter[str] = Counter()
        self.flush_every, self.flush_bytes = flush_every, flush_bytes
        self._task: asyncio.Task | None = None

    def add(self, channel: str, nbytes: int) -> None:
        self.pending[channel] += nbytes
        self.total[channel] += nbytes
        if sum(self.pending.values()) >= self.flush_bytes:
            self._schedule(0)
        elif self._task is None:
            self._schedule(self.flush_every)

    def _schedule(self, delay: float) -> None:
        if self._task is not None and delay > 0:
            return
        self._task = asyncio.get_event_loop().create_task(self._flush_later(delay))

    async def _flush_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._task = None
        await self.flush()

    async def flush(self) -> None:
        if not self.pending:
            return
        counts, self.pending = dict(self.pending), Counter()
        try:
            await self._record(counts)
        except Exception:  # the bytes are already on screen: keep them for the next flush
            log.exception("could not record outflow; retrying later")
            self.pending.update(counts)
            self._schedule(self.flush_every)


class MeteredKernelConnection(ZMQChannelsWebsocketConnection):
    """Kernel websocket that counts the bytes it writes to the browser."""

    async def connect(self) -> None:  # type: ignore[override]
        guard = self.websocket_handler.settings["cloisonne_guard"]
        handler = self.websocket_handler
        original = handler.write_message

        def counted(message: Any, binary: bool = False) -> Any:
            guard.meter.add("kernel", len(message))
            return original(message, binary=binary)

        handler.write_message = counted  # type: ignore[method-assign]
        result = super().connect()
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            await result


def meter_terminals(guard: Any) -> None:
    """Count what terminals send to the browser (terminado has no hook: wrap its writer)."""
    try:
        from terminado.websocket import TermSocket
    except ImportError:  # terminals not installed: nothing to meter
        return
    if getattr(TermSocket, "_cloisonne_metered", False):
        return
    original = TermSocket.on_pty_read

    def on_pty_read(self: Any, text: str) -> None:
        guard.meter.add("terminal", len(text.encode("utf-8", "replace")))
        original(self, text)

    TermSocket.on_pty_read = on_pty_read  # type: ignore[method-assign]
    TermSocket._cloisonne_metered = True  # type: ignore[attr-defined]
