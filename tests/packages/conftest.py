"""A real package proxy process on 127.0.0.1 with a real hub database (JupyterHub's tables
and the audit log), for the proxy's own tests and the benchmark."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloisonne.audit.store import AuditStore
from cloisonne.core.packages import index_url, workspace_token
from cloisonne.packages.process import PackageProxy
from cloisonne.packages.settings import ProxySettings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hub_database(path: Path, groups: dict[str, dict]) -> str:
    """JupyterHub's own schema with these project groups, and the audit tables."""
    from jupyterhub import orm

    url = f"sqlite:///{path}"
    db = orm.new_session_factory(url)()
    for name, properties in groups.items():
        db.add(orm.Group(name=name, properties=properties))
    db.commit()
    db.close()
    AuditStore(url).close()
    return url


def pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def pip(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          env=pip_env(), timeout=timeout)  # fmt: skip


class RunningProxy:
    def __init__(self, proxy: PackageProxy, key: bytes) -> None:
        self.proxy, self.key = proxy, key
        self.settings = proxy.settings

    def url(self, project: str, user: str) -> str:
        token = workspace_token(self.key, project, user)
        return index_url(self.settings.host, self.settings.port, project, user, token)


@pytest.fixture
def start_proxy(tmp_path: Path) -> Iterator:
    started: list[PackageProxy] = []

    def start(groups: dict[str, dict], **traits: object) -> RunningProxy:
        db_url = hub_database(tmp_path / "hub.sqlite", groups)
        settings = ProxySettings(host="127.0.0.1", port=free_port(), db_url=db_url,
                                 state_dir=str(tmp_path / "packages"), **traits)  # fmt: skip
        proxy = PackageProxy(settings)
        proxy.start()
        started.append(proxy)
        return RunningProxy(proxy, settings.key_file.read_bytes())

    yield start
    for proxy in started:
        proxy.stop()
