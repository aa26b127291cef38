"""Egress self-test: before serving, try to reach addresses a workspace must never reach.

The network namespace (local) or NetworkPolicy (Kubernetes) is the boundary; this test makes a
site whose network does not enforce it find out at the first spawn, not after a leak.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

DEFAULT_PROBES = ("1.1.1.1:443", "8.8.8.8:53", "9.9.9.9:443", "169.254.169.254:80")


def parse_probes(text: str) -> list[tuple[str, int]]:
    out = []
    for item in text.replace(",", " ").split():
        host, _, port = item.rpartition(":")
        out.append((host, int(port)))
    return out


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
