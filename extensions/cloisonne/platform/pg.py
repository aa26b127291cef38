"""A private PostgreSQL cluster for the local platform (`make up DB=postgres`, tests).

Debian's server binaries, a data folder under the platform's state folder owned by the
``postgres`` user (initdb refuses root), listening on 127.0.0.1 on a port of its own and on a
Unix socket inside the data folder. Connections over TCP need the password made at initdb
(kept root-only in the state folder); the socket, reachable only by root and ``postgres``,
trusts its users. Stopped by the postmaster's PID.
"""

from __future__ import annotations

import os
import pwd
import secrets
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..procs import alive, stop_pid

DB_NAME = "jupyterhub"
DB_USER = "cloisonne"


def pg_bindir() -> Path:
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    if not versions:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (make deps)")
    return versions[-1].parent


@dataclass
class PrivatePostgres:
    root: Path  # <state>/pg: holds data/, password, port
    os_user: str = "postgres"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def port(self) -> int:
        path = self.root / "port"
        if not path.exists():
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                path.write_text(str(s.getsockname()[1]))
        return int(path.read_text())

    @property
    def password(self) -> str:
        path = self.root / "password"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(24))
            os.chmod(path, 0o600)
        return path.read_text().strip()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{DB_USER}:{self.password}@127.0.0.1:{self.port}/{DB_NAME}"

    def _run(self, *cmd: str) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", self.os_user, "--"] if os.geteuid() == 0 else []
        r = subprocess.run(prefix + list(cmd), capture_output=True, text=True, cwd="/")
        if r.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
        return r

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.os_user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def init(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o711)
        self.data.mkdir(mode=0o700, exist_ok=True)
        self._own(self.data)
        pwfile = self.root / "initdb-password"
        pwfile.write_text(self.password + "\n")
        self._own(pwfile)
        try:
            self._run(str(pg_bindir() / "initdb"), "-D", str(self.data), "-U", DB_USER,
                      f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=trust",
                      "-E", "UTF8", "--locale=C.UTF-8")  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def start(self) -> None:
        self.init()
        if alive(self.pid()):
            return
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        self._run(str(pg_bindir() / "pg_ctl"), "-D", str(self.data), "-w", "-l",
                  str(self.data / "server.log"), "-o", options, "start")  # fmt: skip
        have = self._run(str(pg_bindir() / "psql"), "-h", str(self.data),
                         "-p", str(self.port), "-U", DB_USER, "-d", "postgres", "-tAc",
                         f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'")  # fmt: skip
        if have.stdout.strip() != "1":
            self._run(str(pg_bindir() / "createdb"), "-h", str(self.data), "-p", str(self.port),
                      "-U", DB_USER, DB_NAME)  # fmt: skip

    def stop(self, timeout: float = 20) -> None:
        # PostgreSQL's "fast" shutdown, then its "immediate" one
        stop_pid(self.pid(), timeout=timeout, sig=signal.SIGINT, then=signal.SIGQUIT)
