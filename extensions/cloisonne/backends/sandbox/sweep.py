"""Remove every namespace, interface, nft element or table and cgroup a hub (prefix) created.

Used by `cloisonne down` and by the tests' teardown, after servers were stopped normally, to
make sure a crash never leaves anything behind. Only names carrying this hub's prefix are
touched; processes are ended by the PIDs listed in this hub's own cgroups.
"""

from __future__ import annotations

from pathlib import Path

from . import host
from .cgroups import CgroupLayout, SandboxCgroup
from .network import SiteNetwork


def leftovers(site: SiteNetwork) -> dict[str, list[str]]:
    """What of this hub's resources still exists (empty lists when clean)."""
    layout = CgroupLayout.detect()
    cgroups = []
    for root in sorted(set(layout.roots.values())):
        parent = Path(root, "cloisonne")
        if parent.is_dir():
            cgroups += [str(p) for p in parent.iterdir() if p.is_dir() and site.owns_netns(p.name)]
    return {
        "netns": [n for n in host.netns_list() if site.owns_netns(n)],
        "links": [
            name
            for name in host.links()
            if name.startswith(site.prefix) and name[len(site.prefix) : -1].isdigit()
        ],  # fmt: skip
        # Per-server firewall elements in the site's table, and per-server tables of an
        # earlier version; the site table itself belongs to the hub, like its veth pair.
        "nft_tables": [f"{site.nft_table}:{i}" for i in host.server_interfaces(site)]
        + [t for t in host.nft_tables() if site.owns_table(t) and t != site.nft_table],
        "cgroups": cgroups,
    }


def sweep(site: SiteNetwork, *, hub_link: bool = True) -> dict[str, list[str]]:
    """Remove this hub's leftovers; returns what was found (and removed)."""
    found = leftovers(site)
    layout = CgroupLayout.detect()
    names = {Path(p).name for p in found["cgroups"]}
    for name in names:
        SandboxCgroup(layout, name).kill_and_remove()
    slots = {int(name.split("-", 1)[1]) for name in names | set(found["netns"])}
    for entry in found["nft_tables"]:
        table, _, iface = entry.partition(":")
        if iface and iface[len(site.prefix) : -1].isdigit():
            slots.add(int(iface[len(site.prefix) : -1]))
    for slot in sorted(slots):
        host.remove_server_network(site, site.slot(slot))
    for link in found["links"]:
        host.run(["ip", "link", "del", link], check=False)
    for table in found["nft_tables"]:
        if ":" not in table:
            host.run(["nft", "delete", "table", "inet", table], check=False)
    if hub_link:
        host.remove_hub_link(site)
        host.remove_site_table(site)
    return found
