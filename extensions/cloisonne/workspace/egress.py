"""Egress self-test: before serving, try to reach addresses a workspace must never reach.

The network namespace (local) or NetworkPolicy (Kubernetes) is the boundary; this test makes a
site whose network does not enforce it find out at the first spawn, not after a leak.
"""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from ..core.values import parse_host_port

DEFAULT_PROBES = ("1.1.1.1:443", "8.8.8.8:53", "9.9.9.9:443", "169.254.169.254:80")


def parse_probes(text: str) -> list[tuple[str, int]]:
    out = []
    for item in text.replace(",", " ").split():
        out.append(parse_host_port(item))
    return out


class EarlyProbe:
    """Probes started by the server launcher before its imports (about a second), so that the
    self-test costs no start-up time; the guard collects the result when it loads."""

    current: EarlyProbe | None = None

    def __init__(self, targets: list[tuple[str, int]], timeout: float):
        self.targets, self.timeout = targets, timeout
        self.result: list[str] | None = None
        self._thread = threading.Thread(target=self._run, name="egress-probe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.result = reachable(self.targets, self.timeout)

    def wait(self) -> list[str]:
        self._thread.join()
        assert self.result is not None
        return self.result

    @classmethod
    def start(cls, text: str, timeout: float) -> EarlyProbe:
        cls.current = cls(parse_probes(text), timeout)
        return cls.current


def reachable(targets: list[tuple[str, int]], timeout: float = 0.3) -> list[str]:
    """The targets that accepted a TCP connection (all probed at once)."""

    def probe(target: tuple[str, int]) -> str | None:
        try:
            with socket.create_connection(target, timeout=timeout):
                return f"{target[0]}:{target[1]}"
        except OSError:
            return None

    if not targets:
        return []
    with ThreadPoolExecutor(len(targets)) as pool:
        return [r for r in pool.map(probe, targets) if r]
