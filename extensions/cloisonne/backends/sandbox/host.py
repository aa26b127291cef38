"""Changes to the host's network: namespaces, veth pairs and nftables tables.

Every function is idempotent (creating what exists or deleting what is gone is not an error),
so cleanup can safely run more than once, from stop(), poll() and clear_state().
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Sequence

from ...core.plan import Endpoint
from .network import SANDBOX_IF, ServerNetwork, SiteNetwork, nft_ruleset, sandbox_routes


class HostCommandError(RuntimeError):
    pass


def run(argv: Sequence[str], *, input: str | None = None, check: bool = True) -> str:
    result = subprocess.run(list(argv), input=input, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise HostCommandError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result.stdout


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", "dev", name], capture_output=True).returncode == 0


def netns_list() -> list[str]:
    return [line.split()[0] for line in run(["ip", "netns", "list"]).splitlines() if line.strip()]


def nft_tables() -> list[str]:
    data = json.loads(run(["nft", "-j", "list", "tables"]) or '{"nftables": []}')
    return [item["table"]["name"] for item in data["nftables"] if "table" in item]


def links() -> list[str]:
    data = json.loads(run(["ip", "-j", "link", "show"]) or "[]")
    return [item["ifname"] for item in data]


def ensure_hub_link(site: SiteNetwork) -> None:
    """The host-only veth pair carrying the hub API address (created once per site)."""
    if not link_exists(site.hub_link):
        run(["ip", "link", "add", site.hub_link, "type", "veth", "peer", "name", site.hub_peer])
    addrs = run(["ip", "-4", "-o", "addr", "show", "dev", site.hub_link])
    if f" {site.hub_ip}/" not in addrs:
        run(["ip", "addr", "add", f"{site.hub_ip}/32", "dev", site.hub_link])
    run(["ip", "link", "set", site.hub_peer, "up"])
    run(["ip", "link", "set", site.hub_link, "up"])


def remove_hub_link(site: SiteNetwork) -> None:
    if link_exists(site.hub_link):
        run(["ip", "link", "del", site.hub_link], check=False)


def create_server_network(net: ServerNetwork, allow: Iterable[Endpoint], port: int) -> None:
    """Namespace + veth /30 + host routes to the allowed endpoints only (no default route) +
    the server's nft table.

    The nft table is loaded first, so the sandbox end is never up without its rules.
    """
    allow = list(allow)
    remove_server_network(net)  # a leftover from a crash must not be half-reused
    run(["nft", "-f", "-"], input=nft_ruleset(net, allow, port))
    run(["ip", "netns", "add", net.netns])
    run(["ip", "link", "add", net.host_if, "type", "veth", "peer", "name", net.sandbox_if_tmp])
    run(["ip", "link", "set", net.sandbox_if_tmp, "netns", net.netns])
    ns = ["ip", "-n", net.netns]
    run([*ns, "link", "set", net.sandbox_if_tmp, "name", SANDBOX_IF])
    run([*ns, "addr", "add", f"{net.sandbox_ip}/30", "dev", SANDBOX_IF])
    run([*ns, "link", "set", "lo", "up"])  # kernels talk to their server over loopback
    run([*ns, "link", "set", SANDBOX_IF, "up"])
    for route in sandbox_routes(net, allow):
        run([*ns, "route", *route])
    run(["ip", "addr", "add", f"{net.host_ip}/30", "dev", net.host_if])
    run(["ip", "link", "set", net.host_if, "up"])
    # No IPv6 inside: the rules above are written for IPv4 addresses only.
    run(["ip", "netns", "exec", net.netns, "sysctl", "-q", "-w",
         "net.ipv6.conf.all.disable_ipv6=1"])  # fmt: skip


def remove_server_network(net: ServerNetwork) -> None:
    if link_exists(net.host_if):
        run(["ip", "link", "del", net.host_if], check=False)
    if net.netns in netns_list():
        run(["ip", "netns", "del", net.netns], check=False)
    if net.nft_table in nft_tables():
        run(["nft", "delete", "table", "inet", net.nft_table], check=False)
