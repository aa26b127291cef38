"""Per-server network layout and firewall rules (pure).

Every server gets a slot derived from its spawner's database id — never from saved state, since
a slot remembered from an earlier hub once let one user's cleanup delete another's interface.
Slot N owns the /30 at offset 4N of the site subnet: .1 on the host end of its veth, .2 inside
the sandbox. Slot 0 is the hub's host-only veth pair, which carries the hub API address
(an address on ``lo`` is not reachable from other namespaces).

The firewall is one nftables table per site whose rules never change; each server only adds
and removes set elements keyed by its host interface. Every ``nft`` run builds a cache of the
tables it touches, so with one table per server each spawn and stop paid for all the others
(~60 MB and 0.3 s per call at 100 servers); with elements the cost stays flat.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from ...core.plan import Endpoint

MAX_PREFIX_LEN = 4  # interface names are at most 15 bytes: prefix + 5 digits + 1 letter


@dataclass(frozen=True)
class SiteNetwork:
    """The address plan of one hub: a /16 (or larger) and a short name prefix."""

    subnet: str = "10.243.0.0/16"
    prefix: str = "cln"

    def __post_init__(self) -> None:
        net = ipaddress.ip_network(self.subnet)
        if net.version != 4 or net.prefixlen > 20:
            raise ValueError(f"subnet {self.subnet!r}: need an IPv4 network of /20 or larger")
        if not (self.prefix.isalnum() and self.prefix.islower() and 0 < len(self.prefix) <= 4):
            raise ValueError(f"prefix {self.prefix!r}: 1-{MAX_PREFIX_LEN} lowercase letters/digits")

    @property
    def max_slot(self) -> int:
        return ipaddress.ip_network(self.subnet).num_addresses // 4 - 1

    def _addr(self, slot: int, offset: int) -> str:
        return str(ipaddress.ip_network(self.subnet).network_address + 4 * slot + offset)

    # The hub's host-only veth pair (slot 0).
    @property
    def hub_link(self) -> str:
        return f"{self.prefix}hub0"

    @property
    def hub_peer(self) -> str:
        return f"{self.prefix}hub1"

    @property
    def hub_ip(self) -> str:
        return self._addr(0, 1)

    def slot(self, spawner_id: int) -> ServerNetwork:
        if not 1 <= spawner_id <= self.max_slot:
            raise ValueError(
                f"spawner id {spawner_id} is outside 1..{self.max_slot} for subnet {self.subnet}"
            )
        return ServerNetwork(
            slot=spawner_id,
            netns=f"{self.prefix}-{spawner_id}",
            host_if=f"{self.prefix}{spawner_id}h",
            sandbox_if_tmp=f"{self.prefix}{spawner_id}s",
            host_ip=self._addr(spawner_id, 1),
            sandbox_ip=self._addr(spawner_id, 2),
        )

    @property
    def nft_table(self) -> str:
        """The site's one firewall table (created with the first server, removed by sweep)."""
        return f"{self.prefix}_site"

    def owns_table(self, table: str) -> bool:
        """This site's table, or a per-server table an earlier version left (``prefix_N``)."""
        head, _, tail = table.partition("_")
        return head == self.prefix and (tail.isdigit() or tail == "site")

    def owns_netns(self, name: str) -> bool:
        head, _, tail = name.partition("-")
        return head == self.prefix and tail.isdigit()


@dataclass(frozen=True)
class ServerNetwork:
    slot: int
    netns: str
    host_if: str
    sandbox_if_tmp: str  # the peer's name until it is moved into the namespace as eth0
    host_ip: str
    sandbox_ip: str


SANDBOX_IF = "eth0"


def sandbox_routes(net: ServerNetwork, allow: Iterable[Endpoint]) -> list[list[str]]:
    """``ip route`` arguments (after ``ip -n <netns> route``) for the sandbox: no default route,
    one host route per distinct allowed endpoint address, via the host end of the veth.

    Defence in depth behind the nft table: a packet to anything the plan does not name has no
    route and fails in the sandbox itself (ENETUNREACH), even if the host's firewall were
    flushed. The /30 to the host end is the interface's own connected route.
    """
    hosts = dict.fromkeys(str(ipaddress.ip_address(e.host)) for e in allow)
    return [
        ["add", f"{host}/32", "via", net.host_ip, "dev", SANDBOX_IF]
        for host in hosts
        if host != net.host_ip
    ]


# The sets of the site table: every element starts with a server's host interface, which is
# how a server's elements are found again when it stops.
SANDBOXES, ALLOWED_IN, SERVER_OUT = "sandboxes", "allowed_in", "server_out"


def site_ruleset(site: SiteNetwork) -> str:
    """The site's firewall table: rules written once, per-server data in sets.

    Traffic of interfaces that are not sandboxes is left alone (policy accept), so the table
    never interferes with other sites or the host. For a sandbox's host interface: input, only
    replies and new TCP connections to the endpoints its plan allows (Linux accepts traffic for
    any local address on any interface, so without this a sandbox reaches every local service);
    forward, nothing; output, only replies and new TCP to the server's own port (the proxy and
    hub reaching the workspace). An interface is in ``sandboxes`` before its veth exists, so a
    sandbox is never up without its rules.
    """
    return f"""table inet {site.nft_table} {{
    set {SANDBOXES} {{ type ifname; }}
    set {ALLOWED_IN} {{ type ifname . ipv4_addr . inet_service; }}
    set {SERVER_OUT} {{ type ifname . ipv4_addr . inet_service; }}
    chain input {{
        type filter hook input priority filter; policy accept;
        iifname != @{SANDBOXES} accept
        ct state established,related accept
        iifname . ip daddr . tcp dport @{ALLOWED_IN} ct state new accept
        counter drop
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname @{SANDBOXES} counter drop
        oifname @{SANDBOXES} counter drop
    }}
    chain output {{
        type filter hook output priority filter; policy accept;
        oifname != @{SANDBOXES} accept
        ct state established,related accept
        oifname . ip daddr . tcp dport @{SERVER_OUT} ct state new accept
        counter drop
    }}
}}
"""


def server_elements(
    net: ServerNetwork, allow: Iterable[Endpoint], server_port: int
) -> dict[str, list[str]]:
    """The set elements that confine one sandbox, by set name."""
    iface = net.host_if
    return {
        SANDBOXES: [f'"{iface}"'],
        ALLOWED_IN: [
            f'"{iface}" . {e.host} . {e.port} comment "{_comment(e.purpose)}"' for e in allow
        ],
        SERVER_OUT: [f'"{iface}" . {net.sandbox_ip} . {server_port}'],
    }


def add_server_script(
    site: SiteNetwork, net: ServerNetwork, allow: Iterable[Endpoint], server_port: int
) -> str:
    """One nft transaction adding a server's elements (all of them or none)."""
    return _element_script("add", site, server_elements(net, allow, server_port))


def remove_server_script(site: SiteNetwork, elements: dict[str, list[str]]) -> str:
    """One nft transaction deleting the given elements (``sandboxes`` last, for readers)."""
    return _element_script("delete", site, elements)


def elements_of_interface(listing: dict, iface: str) -> dict[str, list[str]]:
    """A server's elements in the JSON of ``nft -j list table``, by set name."""
    found: dict[str, list[str]] = {}
    for item in listing.get("nftables", []):
        nft_set = item.get("set")
        if not nft_set or nft_set["name"] not in (SANDBOXES, ALLOWED_IN, SERVER_OUT):
            continue
        for elem in nft_set.get("elem", []):
            value = elem.get("elem", {}).get("val", elem) if isinstance(elem, dict) else elem
            parts = value["concat"] if isinstance(value, dict) and "concat" in value else [value]
            if parts[0] == iface:
                rendered = " . ".join(f'"{p}"' if i == 0 else str(p) for i, p in enumerate(parts))
                found.setdefault(nft_set["name"], []).append(rendered)
    return found


def _element_script(verb: str, site: SiteNetwork, elements: dict[str, list[str]]) -> str:
    order = (
        (ALLOWED_IN, SERVER_OUT, SANDBOXES)
        if verb == "delete"
        else (SANDBOXES, ALLOWED_IN, SERVER_OUT)
    )
    return "".join(
        f"{verb} element inet {site.nft_table} {name} {{ {', '.join(elements[name])} }}\n"
        for name in order
        if elements.get(name)
    )


def _comment(text: str) -> str:
    return "".join(c for c in text if c.isalnum() or c in " -_.:/")[:120]
