"""Start and stop the package proxy process (``cloisonne up``, the tests): PID-tracked.

The proxy runs as ``python -m cloisonne.packages <state>/packages/settings.json``; its PID file
is checked against the process's command line, so a stale file never makes us signal a
process that took the number.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from ..procs import pid_running_with, stop_pid
from .settings import ProxySettings

TRAITS = ("mode", "host", "port", "upstream", "allow", "allow_sdists", "state_dir", "db_url",
          "cache_ttl", "key_path")  # fmt: skip


class ProxyError(RuntimeError):
    pass


def ensure_key(path: Path) -> bytes:
    """The key workspace credentials are made with (root-only; made once per state folder)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_bytes()


def upstream_reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether this machine reaches ``url`` (decides the mode `cloisonne up` runs in)."""
    try:
        with requests.get(url, timeout=timeout, stream=True) as response:
            return response.status_code < 500
    except requests.RequestException:
        return False


class PackageProxy:
    def __init__(self, settings: ProxySettings) -> None:
        self.settings = settings
        self.root = settings.root
        self.pid_file = self.root / "proxy.pid"
        self.log_file = self.root / "proxy.log"
        self.settings_file = self.root / "settings.json"

    def pid(self) -> int | None:
        return pid_running_with(self.pid_file, str(self.settings_file))

    def start(self, timeout: float = 30.0) -> None:
        if self.pid() is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        ensure_key(self.settings.key_file)
        (self.root / "wheelhouse").mkdir(exist_ok=True)
        data = {"ProxySettings": {t: getattr(self.settings, t) for t in TRAITS}}
        self.settings_file.write_text(json.dumps(data, indent=1))
        os.chmod(self.settings_file, 0o600)
        host, port = self.settings.host, self.settings.port
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                raise ProxyError(f"port {port} is already in use on {host}")
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cloisonne.packages", str(self.settings_file)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                tail = self.log_file.read_text(errors="replace")[-2000:]
                raise ProxyError(f"the package proxy exited with {proc.returncode}: {tail}")
            with socket.socket() as s:
                if s.connect_ex((host, port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise ProxyError(f"the package proxy did not listen within {timeout:.0f} s")

    def stop(self, timeout: float = 10.0) -> None:
        stop_pid(self.pid(), timeout=timeout)
        self.pid_file.unlink(missing_ok=True)
