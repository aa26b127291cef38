from __future__ import annotations

from collections.abc import Iterator

import pgcluster
import pytest


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private PostgreSQL cluster for the session, stopped by PID even when tests fail."""
    if not pgcluster.available():
        pytest.fail("PostgreSQL binaries missing: apt-get install -y postgresql")
    cluster = pgcluster.start()
    try:
        yield cluster.url
    finally:
        cluster.stop()


# PostgreSQL starts a server: `make unit` (-m "not server") runs the SQLite half only.
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """Each store test runs on SQLite (a file) and on PostgreSQL (a fresh database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/audit.db"
        return
    import uuid

    import sqlalchemy

    base = request.getfixturevalue("postgres_url")
    name = "t_" + uuid.uuid4().hex[:12]
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()
