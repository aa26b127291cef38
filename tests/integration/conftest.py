"""Fixtures that run the real platform: JupyterHub, configurable-http-proxy and sandboxes.

Every hub started here uses its own name prefix, subnet and ports, and its teardown stops
servers, hub and proxy and sweeps anything left, even when a test fails.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloisonne.demo import make_demo_datasets
from cloisonne.localhub import LocalHub
from cloisonne.sandbox.network import SiteNetwork

HERE = Path(__file__).parent
PASSWORDS = {"alice": "a-pw", "bob": "b-pw", "carol": "c-pw", "dave": "d-pw", "eve": "e-pw"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        raise pytest.UsageError("the integration tests start real sandboxes and need root")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_hub(prefix: str, subnet: str, **kw: object) -> LocalHub:
    """A hub of its own (state, ports, prefix, subnet). Its workspaces' egress self-test probes
    only addresses on this machine (never outside ones), and the outflow budget is small."""
    state = Path(tempfile.mkdtemp(prefix=f"cloisonne-{prefix}-"))
    hub_ip = SiteNetwork(subnet, prefix).hub_ip
    extra_env = {"CLOISONNE_EGRESS_PROBES": f"{hub_ip}:9 {hub_ip}:22",
                 "CLOISONNE_OUTFLOW_BUDGET": "4M"}  # fmt: skip
    extra_env.update(kw.pop("extra_env", {}))  # type: ignore[arg-type]
    make_demo_datasets(state / "datasets")
    hub = LocalHub(
        state=state,
        projects_file=kw.pop("projects_file", HERE / "projects.yaml"),  # type: ignore[arg-type]
        port=free_port(),
        hub_port=free_port(),
        proxy_api_port=free_port(),
        subnet=subnet,
        prefix=prefix,
        extra_env=extra_env,
        **kw,  # type: ignore[arg-type]
    )
    hub.write_users(PASSWORDS)
    return hub


@pytest.fixture(scope="session")
def platform() -> Iterator[LocalHub]:
    hub = make_hub("clt", "10.244.0.0/16")
    try:
        hub.start()
        hub.api("POST", "/users/eve")  # a user in no project
        yield hub
    finally:
        hub.teardown()
