"""Changes to the host's network: namespaces, veth pairs and the site's nftables table.

Every function is idempotent (creating what exists or deleting what is gone is not an error),
so cleanup can safely run more than once, from stop(), poll() and clear_state(). Nothing here
lists the whole ruleset: each ``nft`` call touches only the site's table, whose size does not
grow with the number of servers beyond a few set elements each.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterable, Sequence

from ...core.plan import Endpoint
from .network import (
    SANDBOX_IF,
    ServerNetwork,
    SiteNetwork,
    add_server_script,
    elements_of_interface,
    remove_server_script,
    sandbox_routes,
    site_ruleset,
)

_site_table_lock = threading.Lock()  # spawns run in threads: create the table once


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


def site_table(site: SiteNetwork) -> dict | None:
    """The JSON listing of the site's table, or None when it does not exist."""
    result = subprocess.run(
        ["nft", "-j", "list", "table", "inet", site.nft_table], capture_output=True, text=True
    )
    return json.loads(result.stdout) if result.returncode == 0 and result.stdout else None


def ensure_site_table(site: SiteNetwork) -> None:
    with _site_table_lock:
        if site_table(site) is None:
            run(["nft", "-f", "-"], input=site_ruleset(site))


def remove_site_table(site: SiteNetwork) -> None:
    if site_table(site) is not None:
        run(["nft", "delete", "table", "inet", site.nft_table], check=False)


def server_interfaces(site: SiteNetwork) -> list[str]:
    """Host interfaces that still have elements in the site's table (servers not cleaned up)."""
    listing = site_table(site) or {}
    names = set()
    for item in listing.get("nftables", []):
        for elem in (item.get("set") or {}).get("elem", []):
            value = elem.get("elem", {}).get("val", elem) if isinstance(elem, dict) else elem
            names.add(value["concat"][0] if isinstance(value, dict) else value)
    return sorted(names)


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


def create_server_network(
    site: SiteNetwork, net: ServerNetwork, allow: Iterable[Endpoint], port: int
) -> None:
    """Namespace + veth /30 + host routes to the allowed endpoints only (no default route) +
    the server's firewall elements.

    The elements are added first, so the sandbox end is never up without its rules.
    """
    allow = list(allow)
    remove_server_network(site, net)  # a leftover from a crash must not be half-reused
    ensure_site_table(site)
    run(["nft", "-f", "-"], input=add_server_script(site, net, allow, port))
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


def remove_server_network(site: SiteNetwork, net: ServerNetwork) -> None:
    """Interface and namespace first, then the elements: no moment without rules."""
    if link_exists(net.host_if):
        run(["ip", "link", "del", net.host_if], check=False)
    if net.netns in netns_list():
        run(["ip", "netns", "del", net.netns], check=False)
    listing = site_table(site)
    if listing is not None:
        # Found by listing, not recomputed from the plan: settings may have changed since the
        # server started, and a stale allow element would open a port to the slot's next user.
        elements = elements_of_interface(listing, net.host_if)
        if elements:
            run(["nft", "-f", "-"], input=remove_server_script(site, elements))
