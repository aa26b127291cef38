"""Local processes by PID (operator tooling and the hub: the S3 store, PostgreSQL, the OIDC
provider, the proxy, `cloisonne up`): is it alive, stop it. Imports nothing of cloisonne."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def alive(pid: int | None) -> bool:
    """Whether ``pid`` runs; a zombie counts as gone (a child of ours is reaped here)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited:
            return False
    except ChildProcessError:  # not our child: ask /proc
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in {"Z", "X"}


def read_pid(path: Path) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pid_running_with(path: Path, marker: str) -> int | None:
    """The PID in ``path`` if that process runs with ``marker`` among its arguments, else None:
    a PID file outlives its process, and its number can be reused by someone else's."""
    pid = read_pid(path)
    if not alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return pid if marker.encode() in cmdline else None


def stop_pid(
    pid: int | None,
    *,
    timeout: float = 10,
    sig: int = signal.SIGTERM,
    then: int | None = signal.SIGKILL,
) -> bool:
    """Send ``sig``, wait up to ``timeout`` s, then send ``then`` (and wait for it, unless it
    is None). Returns whether the process is gone. Idempotent."""
    if not alive(pid):
        return True
    assert pid is not None
    try:
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.05)
        if then is not None and alive(pid):
            os.kill(pid, then)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and alive(pid):
                time.sleep(0.05)
    except ProcessLookupError:
        return True
    if alive(pid):
        return False
    _wait_reaped(pid, 2.0)
    return True


def _wait_reaped(pid: int, timeout: float) -> None:
    """Give the parent of an exited process (not ours) a moment to reap it, so that its PID is
    gone, not a zombie, when stop_pid returns."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
