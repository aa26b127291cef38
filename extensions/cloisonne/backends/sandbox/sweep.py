"""Remove every namespace, interface, nft table and cgroup a hub (name prefix) created.

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
        "nft_tables": [t for t in host.nft_tables() if site.owns_table(t)],
        "cgroups": cgroups,
    }


def sweep(site: SiteNetwork, *, hub_link: bool = True) -> dict[str, list[str]]:
    """Remove this hub's leftovers; returns what was found (and removed)."""
    found = leftovers(site)
    layout = CgroupLayout.detect()
    names = {Path(p).name for p in found["cgroups"]}
    for name in names:
        SandboxCgroup(layout, name).kill_and_remove()
    for name in names | set(found["netns"]):
        slot = int(name.split("-", 1)[1])
        host.remove_server_network(site.slot(slot))
    for link in found["links"]:
        host.run(["ip", "link", "del", link], check=False)
    for table in found["nft_tables"]:
        host.run(["nft", "delete", "table", "inet", table], check=False)
    if hub_link:
        host.remove_hub_link(site)
    return found
