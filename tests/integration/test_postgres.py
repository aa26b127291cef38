"""The hub database on a private PostgreSQL cluster (`make up DB=postgres`)."""

from __future__ import annotations

import os
import signal

from cloisonne.platform.pg import PrivatePostgres, pg_bindir

from .conftest import PASSWORDS, make_hub
from .oidc_login import login
from .test_up_down import alive, start_up
from .workspace import spawn, stop


def psql(pg: PrivatePostgres, sql: str) -> str:
    return pg._run(str(pg_bindir() / "psql"), "-h", str(pg.data), "-p", str(pg.port),
                   "-U", "cloisonne", "-d", "jupyterhub", "-tAc", sql).stdout.strip()  # fmt: skip


def test_hub_runs_on_postgres_and_keeps_its_state_across_restarts() -> None:
    hub = make_hub("q", db="postgres")
    hub.write_users(PASSWORDS)
    try:
        hub.start()
        pg = hub.pg
        assert pg is not None and "postgresql+psycopg://" in hub.env()["CLOISONNE_DB_URL"]
        # the cluster belongs to the postgres user, listens on loopback only
        assert os.stat(pg.data).st_uid != 0
        assert "listen_addresses=127.0.0.1" in (pg.data / "postmaster.opts").read_text()
        assert login(hub, "alice", "a-pw").ok
        assert psql(pg, "SELECT name FROM users ORDER BY name").splitlines()[0] == "alice"
        assert "Test project A" in psql(pg, "SELECT properties FROM groups WHERE name='cardio'")
        ws = spawn(hub, "dave", "onco")
        assert ws.run("print(6 * 7)").strip() == "42"
        stop(hub, "dave", "onco")
        hub.stop()
        hub.start()  # same cluster, same data
        assert hub.api("GET", "/users/alice").json()["groups"] == ["cardio", "onco-leads"]
        pid = pg.pid()
    finally:
        hub.teardown()
    assert pid and not alive(pid)  # stopped by PID with the hub


def test_cloisonne_up_with_db_postgres() -> None:
    # what `make up DB=postgres` sets
    proc, hub, env = start_up("r", {"CLOISONNE_DB": "postgres"})
    try:
        assert env["CLOISONNE_DB"] == "postgres"
        pg = PrivatePostgres(hub.state / "pg")
        pid = pg.pid()
        assert pid and alive(pid)
        assert login(hub, "bob", "bob-demo").ok
        assert "bob" in psql(pg, "SELECT name FROM users")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
        assert not alive(pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        PrivatePostgres(hub.state / "pg").stop()
        hub.teardown()
