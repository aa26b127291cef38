"""Per-server network layout and firewall rules (pure).

Every server gets a slot derived from its spawner's database id — never from saved state, since
a slot remembered from an earlier hub once let one user's cleanup delete another's interface.
Slot N owns the /30 at offset 4N of the site subnet: .1 on the host end of its veth, .2 inside
the sandbox. Slot 0 is the hub's host-only veth pair, which carries the hub API address
(an address on ``lo`` is not reachable from other namespaces).
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
            nft_table=f"{self.prefix}_{spawner_id}",
        )

    def owns_table(self, table: str) -> bool:
        head, _, tail = table.partition("_")
        return head == self.prefix and tail.isdigit()

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
    nft_table: str


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


def nft_ruleset(net: ServerNetwork, allow: Iterable[Endpoint], server_port: int) -> str:
    """The nftables table that confines one sandbox.

    It matches only this sandbox's host interface, so tables of different servers never
    interfere. Input: only new TCP connections to the allowed endpoints (Linux accepts traffic
    for any local address on any interface, so without this a sandbox reaches every local
    service). Forward: nothing. Output: only new TCP to the server's own port (the proxy and
    hub reaching the workspace). Replies to accepted connections pass via conntrack.
    """
    iface = net.host_if
    allowed = "\n".join(
        f'        iifname "{iface}" ip daddr {e.host} tcp dport {e.port} ct state new accept'
        f"  # {e.purpose}"
        for e in allow
    )
    return f"""table inet {net.nft_table} {{
    chain input {{
        type filter hook input priority filter; policy accept;
        iifname "{iface}" ct state established,related accept
{allowed}
        iifname "{iface}" counter drop
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "{iface}" counter drop
        oifname "{iface}" counter drop
    }}
    chain output {{
        type filter hook output priority filter; policy accept;
        oifname "{iface}" ct state established,related accept
        oifname "{iface}" ip daddr {net.sandbox_ip} tcp dport {server_port} ct state new accept
        oifname "{iface}" counter drop
    }}
}}
"""
