"""Fixtures that run the real platform: JupyterHub, configurable-http-proxy and sandboxes.

Every hub started here uses its own name prefix, subnet and ports, and its teardown stops
servers, hub and proxy and sweeps anything left, even when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import string
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloisonne.backends.sandbox.network import SiteNetwork
from cloisonne.platform.demo import make_demo_datasets
from cloisonne.platform.localhub import LocalHub

HERE = Path(__file__).parent
PASSWORDS = {"alice": "a-pw", "bob": "b-pw", "carol": "c-pw", "dave": "d-pw", "eve": "e-pw"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        raise pytest.UsageError("the integration tests start real sandboxes and need root")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Names and addresses unique to this test run, so that two runs on one machine (a developer's
# and CI's, or two checkouts) never touch each other's namespaces, interfaces or tables:
# prefix "t" + two random letters + a role letter; a /16 of 10.100-10.199.0.0 that no interface
# on the machine uses yet.
RUN_TAG = "".join(random.choices(string.ascii_lowercase, k=2))
_taken: set[str] = set()


def _subnets_in_use() -> set[str]:
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    return {".".join(word.split(".")[:2]) for word in out.split() if word.startswith("10.")}


def allocate_site(role: str) -> SiteNetwork:
    """A fresh (prefix, subnet) for one hub of this run; ``role`` is one letter."""
    in_use = _subnets_in_use() | _taken
    free = [f"10.{n}" for n in range(100, 200) if f"10.{n}" not in in_use]
    net = random.choice(free)
    _taken.add(net)
    return SiteNetwork(f"{net}.0.0/16", f"t{RUN_TAG}{role}")


def free_store_port(host: str = "127.0.0.1") -> int:
    """A CLOISONNE_S3_PORT whose ten store ports are free (weed also names /tmp sockets by
    port, so two stores on different addresses still need different ports)."""
    from cloisonne.data.s3 import StorePorts

    for _ in range(50):
        base = random.randrange(20000, 22700, 10)
        ports = StorePorts(base).all().values()
        if all(_port_free(host, p) for p in ports):
            return base
    raise RuntimeError("no free ports for an S3 store")


def _port_free(host: str, port: int) -> bool:
    if list(Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock")):
        return False
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def find_pids(
    cmdline: bytes = b"", environ: bytes = b"", *, exclude: bytes = b"", non_root: bool = False
) -> list[int]:
    """PIDs whose command line contains ``cmdline`` (and not ``exclude``) and whose environment
    contains ``environ``; tests find the processes of *their* hub this way (a hub's address or
    database URL is unique to its run)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if non_root and os.stat(f"/proc/{pid}").st_uid == 0:
                continue
            args = open(f"/proc/{pid}/cmdline", "rb").read()
            env = open(f"/proc/{pid}/environ", "rb").read()
        except OSError:
            continue
        if cmdline in args and environ in env and not (exclude and exclude in args):
            found.append(int(pid))
    return found


def make_hub(role: str, site: SiteNetwork | None = None, **kw: object) -> LocalHub:
    """A hub of its own (state, ports, prefix, subnet). Its workspaces' egress self-test probes
    only addresses on this machine (never outside ones), and the outflow budget is small."""
    site = site or allocate_site(role)
    prefix, subnet = site.prefix, site.subnet
    state = Path(tempfile.mkdtemp(prefix=f"cloisonne-{prefix}-"))
    hub_ip = site.hub_ip
    extra_env = {"CLOISONNE_EGRESS_PROBES": f"{hub_ip}:9 {hub_ip}:22",
                 "CLOISONNE_OUTFLOW_BUDGET": "4M",
                 # the S3 store adds ~4 s to a hub's start and stop: only tests of it turn it on
                 "CLOISONNE_S3": "off"}  # fmt: skip
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
        db=kw.pop("db", os.environ.get("CLOISONNE_TEST_DB", "sqlite")),  # make test DB=postgres
        **kw,  # type: ignore[arg-type]
    )
    hub.write_users(PASSWORDS)
    return hub


@contextlib.contextmanager
def running_hub(
    role: str, accounts: dict[str, str] | None = None, admins: tuple[str, ...] = (), **kw: object
) -> Iterator[LocalHub]:
    """A started hub of its own, torn down (servers, processes, network) even on failure."""
    hub = make_hub(role, **kw)
    if accounts is not None:
        hub.write_users(accounts, admins=admins)
    try:
        hub.start()
        yield hub
    finally:
        hub.teardown()


@pytest.fixture(scope="session")
def platform() -> Iterator[LocalHub]:
    hub = make_hub("p")
    try:
        hub.start()
        hub.api("POST", "/users/eve")  # a user in no project
        yield hub
    finally:
        hub.teardown()
