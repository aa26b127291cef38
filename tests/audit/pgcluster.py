"""A private, throw-away PostgreSQL cluster for tests and benchmarks.

initdb refuses to run as root, so as root the cluster is created and run as the ``postgres``
system user (Debian's package creates it) in a temporary directory it owns. The server is
stopped with ``pg_ctl stop`` and then, whatever happened, by its PID.
Missing binaries: ``apt-get install -y postgresql`` (about 10 s on Debian).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def find_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def available() -> bool:
    if not (find_bin("initdb") and find_bin("pg_ctl")):
        return False
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    directory: Path
    port: int
    pid: int
    run_as: list[str]
    stopped: bool = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        """Stop the server (pg_ctl, then its PID) and remove its files; safe to call twice
        (a second call never signals a PID that may since belong to another process)."""
        if self.stopped:
            return
        self.stopped = True
        pg_ctl = find_bin("pg_ctl")
        data = self.directory / "data"
        if pg_ctl:
            subprocess.run(
                [
                    *self.run_as,
                    pg_ctl,
                    "-D",
                    str(data),
                    "-m",
                    "immediate",
                    "-w",
                    "-t",
                    "10",
                    "stop",
                ],
                capture_output=True,
                timeout=20,
            )
        _kill_pid(self.pid)
        shutil.rmtree(self.directory, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_pid(pid: int) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if not _alive(pid):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)


def start(*, fsync: bool = False) -> Cluster:
    """initdb + pg_ctl start on a free port; fsync off by default (tests, not durability)."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise RuntimeError("PostgreSQL binaries not found (apt-get install -y postgresql)")
    directory = Path(tempfile.mkdtemp(prefix="cloisonne-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(directory, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data = directory / "data"
    port = free_port()
    try:
        subprocess.run(
            [*run_as, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--no-locale", "--no-sync"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        options = (
            f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 "
            f"-c fsync={'on' if fsync else 'off'} -c max_connections=50"
        )
        subprocess.run(
            [*run_as, pg_ctl, "-D", str(data), "-o", options, "-l", str(directory / "log"),
             "-w", "-t", "30", "start"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    except Exception:
        pidfile = data / "postmaster.pid"
        if pidfile.exists():
            _kill_pid(int(pidfile.read_text().splitlines()[0]))
        shutil.rmtree(directory, ignore_errors=True)
        raise
    cluster = Cluster(directory=directory, port=port, pid=pid, run_as=run_as)
    atexit.register(cluster.stop)  # if the caller's own cleanup never runs
    return cluster
