"""Kernel telemetry: a PEP 578 audit hook reporting network connections, subprocesses and
native-library loads to the audit log.

This is telemetry, not a boundary: code in the kernel can evade it (the network namespace is
the boundary). Events are batched and sent from a background thread so the kernel never waits.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import sys
import threading
import time
import urllib.request
from typing import Any

WATCHED = {"socket.connect", "subprocess.Popen", "ctypes.dlopen", "os.exec", "os.posix_spawn"}
_local = threading.local()


class Reporter:
    def __init__(self, url: str, token: str, flush_every: float = 0.2, max_queue: int = 1000):
        self.url, self.token, self.flush_every = url, token, flush_every
        self.queue: queue.Queue[dict] = queue.Queue(max_queue)
        self.seen: dict[tuple, float] = {}
        threading.Thread(target=self._run, name="cloisonne-audit-hook", daemon=True).start()

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event not in WATCHED or getattr(_local, "inside", False):
            return
        detail = _describe(event, args)
        key = (event, detail)
        now = time.monotonic()
        if now - self.seen.get(key, -60) < 60:  # the same thing once a minute is enough
            return
        self.seen[key] = now
        try:
            self.queue.put_nowait({"type": "kernel." + event.replace(".", "_").lower(),
                                   "fields": {"event": event, "detail": detail}})  # fmt: skip
        except queue.Full:
            pass

    def _run(self) -> None:
        _local.inside = True  # this thread's own connections are not reported
        while True:
            batch = [self.queue.get()]
            time.sleep(self.flush_every)  # gather what follows closely into one request
            self._send(batch)

    def flush(self) -> None:
        """Send what is queued now (at kernel exit)."""
        _local.inside = True
        self._send([])

    def _send(self, batch: list[dict]) -> None:
        while not self.queue.empty() and len(batch) < 100:
            batch.append(self.queue.get_nowait())
        if batch:
            request = urllib.request.Request(
                self.url, data=json.dumps(batch).encode(), method="POST",
                headers={"Authorization": f"token {self.token}",
                         "Content-Type": "application/json"},
            )  # fmt: skip
            try:
                urllib.request.urlopen(request, timeout=5).close()
            except OSError:
                pass  # telemetry: lost rather than blocking the kernel


def _describe(event: str, args: tuple[Any, ...]) -> str:
    if event == "socket.connect" and len(args) >= 2:
        return repr(args[1])[:200]
    if event == "subprocess.Popen" and len(args) >= 2:
        return repr(args[1])[:200]
    return repr(args[:1])[:200]


def install() -> Reporter | None:
    url = os.environ.get("CLOISONNE_SERVICE_URL")
    token = os.environ.get("JUPYTERHUB_API_TOKEN")
    if not url or not token:
        return None
    reporter = Reporter(url + "api/audit/events", token)
    sys.addaudithook(reporter.hook)
    atexit.register(reporter.flush)
    return reporter
