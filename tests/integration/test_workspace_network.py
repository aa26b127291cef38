"""Network guarantees, proven from inside a running workspace.

The test starts TCP and UDP listeners on host addresses (loopback, the sandbox's own host-side
veth address, the hub's address on a port other than the API, the host's main address) and
checks that the workspace reaches none of them, nor another sandbox — while the hub API answers.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from collections.abc import Iterator

import pytest
from cloisonne.backends.sandbox import host
from cloisonne.platform.localhub import LocalHub

from .workspace import Workspace, running


def main_address() -> str:
    """The address of the interface that holds the default route (the host's main address)."""
    routes = json.loads(host.run(["ip", "-4", "-j", "route", "show", "default"]))
    if not routes:
        pytest.fail("this host has no default route to find its main address from")
    data = json.loads(host.run(["ip", "-4", "-j", "addr", "show", "dev", routes[0]["dev"]]))
    return data[0]["addr_info"][0]["local"]


class Listeners:
    """TCP and UDP listeners that record every connection or datagram they receive."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.sockets: list[socket.socket] = []
        self.stopping = threading.Event()

    def tcp(self, ip: str) -> int:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, 0))
        s.listen()
        s.settimeout(0.2)
        self._watch(s, f"tcp {ip}")
        return s.getsockname()[1]

    def udp(self, ip: str, port: int = 53) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        s.settimeout(0.2)
        self._watch(s, f"udp {ip}:{port}")

    def _watch(self, s: socket.socket, label: str) -> None:
        self.sockets.append(s)

        def loop() -> None:
            while not self.stopping.is_set():
                try:
                    if s.type == socket.SOCK_STREAM:
                        conn, _ = s.accept()
                        conn.close()
                    else:
                        s.recvfrom(512)
                    self.hits.append(label)
                except OSError:
                    continue

        threading.Thread(target=loop, daemon=True).start()

    def close(self) -> None:
        self.stopping.set()
        for s in self.sockets:
            s.close()


@pytest.fixture(scope="module")
def workspaces(platform: LocalHub) -> Iterator[tuple[Workspace, Workspace]]:
    with running(platform, ("alice", "cardio"), ("dave", "onco")) as (alice, dave):
        yield alice, dave


CONNECT = """
import json, os, socket, urllib.request
targets = {targets!r}
result = {{}}
for label, (ip, port) in targets.items():
    s = socket.socket()
    s.settimeout(1.5)
    try:
        s.connect((ip, port))
        result[label] = 'connected'
    except OSError as e:
        result[label] = type(e).__name__
    finally:
        s.close()
for ip in {udp_targets!r}:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.sendto(b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x07example\\x03com\\x00\\x00\\x01\\x00\\x01', (ip, 53))
    except OSError:
        pass
    u.close()
with urllib.request.urlopen(os.environ['JUPYTERHUB_API_URL'], timeout=10) as r:
    result['hub_api'] = r.status
print(json.dumps(result))
"""


def test_only_the_hub_api_is_reachable(platform: LocalHub, workspaces) -> None:
    alice, dave = workspaces
    site = platform.site
    alice_net = site.slot(platform.spawner_id("alice", "cardio"))
    dave_net = site.slot(platform.spawner_id("dave", "onco"))
    main = main_address()
    listeners = Listeners()
    try:
        targets = {
            "loopback": ("127.0.0.1", listeners.tcp("127.0.0.1")),
            "own veth host side": (alice_net.host_ip, listeners.tcp(alice_net.host_ip)),
            "hub address, other port": (site.hub_ip, listeners.tcp(site.hub_ip)),
            "host main address": (main, listeners.tcp(main)),
            "proxy public port": ("127.0.0.1", platform.port),
            "proxy on main address": (main, platform.port),
            "other sandbox's server": (dave_net.sandbox_ip, 8888),
            "other sandbox's host side": (dave_net.host_ip, listeners.tcp(dave_net.host_ip)),
        }
        udp_targets = [alice_net.host_ip, site.hub_ip, main]
        for ip in udp_targets:
            listeners.udp(ip)
        result = alice.run_json(CONNECT.format(targets=targets, udp_targets=udp_targets))
    finally:
        listeners.close()
    assert result.pop("hub_api") == 200
    assert all(outcome != "connected" for outcome in result.values()), result
    assert listeners.hits == []


def test_proxy_reaches_the_workspace(platform: LocalHub, workspaces) -> None:
    alice, _ = workspaces
    # The proxy (host side) reaches the server: that is the one inbound path.
    assert alice.get("api/status").status_code == 200


ROUTES = """
import errno, json, socket, struct
routes = []
with open('/proc/net/route') as f:
    next(f)
    for line in f:
        iface, dest, gateway, flags, _, _, _, mask = line.split()[:8]
        ip = lambda h: socket.inet_ntoa(struct.pack('<I', int(h, 16)))
        routes.append([iface, ip(dest), ip(gateway), ip(mask)])
s = socket.socket()
s.settimeout(1.5)
try:
    s.connect(({main!r}, 80))
    outside = 'connected'
except OSError as e:
    outside = errno.errorcode.get(e.errno, str(e))
print(json.dumps({{'routes': routes, 'outside': outside}}))
"""


def test_route_table_has_no_default_only_the_plans_endpoints(
    platform: LocalHub, workspaces
) -> None:
    alice, _ = workspaces
    net = platform.site.slot(platform.spawner_id("alice", "cardio"))
    result = alice.run_json(ROUTES.format(main=main_address()))
    routes = result["routes"]
    assert all(dest != "0.0.0.0" for _, dest, _, _ in routes), routes
    via_host = {dest for _, dest, gateway, mask in routes if gateway == net.host_ip}
    assert platform.site.hub_ip in via_host
    # every routed destination is a single host via the veth's host end
    assert all(mask == "255.255.255.255" for _, _, gateway, mask in routes
               if gateway != "0.0.0.0"), routes  # fmt: skip
    # the connected /30 is the only other route
    link = str(ipaddress.ip_network(f"{net.sandbox_ip}/30", strict=False).network_address)
    assert [r for r in routes if r[2] == "0.0.0.0"] == [
        ["eth0", link, "0.0.0.0", "255.255.255.252"]
    ]
    # the host's main address has no route: refused inside the sandbox, before any firewall
    assert result["outside"] == "ENETUNREACH"
