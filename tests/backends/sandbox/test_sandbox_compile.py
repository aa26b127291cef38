"""The pure compilers of the local backend: network layout, nft rules, bwrap command line."""

from __future__ import annotations

import pytest
from cloisonne.backends.sandbox.bwrap import (
    MountStep,
    SandboxRuntime,
    bwrap_argv,
    options_file,
    order_mounts,
    passwd_entries,
)
from cloisonne.backends.sandbox.network import (
    SiteNetwork,
    add_server_script,
    elements_of_interface,
    remove_server_script,
    sandbox_routes,
    server_elements,
    site_ruleset,
)
from cloisonne.core.plan import Endpoint, PlanSettings, User, plan_workspace
from cloisonne.core.projects import Limits, Project

SITE = SiteNetwork("10.243.0.0/16", "cln")


def test_slots_are_disjoint_30s_derived_from_the_spawner_id() -> None:
    a, b = SITE.slot(1), SITE.slot(2)
    assert (a.host_ip, a.sandbox_ip) == ("10.243.0.5", "10.243.0.6")
    assert (b.host_ip, b.sandbox_ip) == ("10.243.0.9", "10.243.0.10")
    assert SITE.hub_ip == "10.243.0.1"
    last = SITE.slot(SITE.max_slot)
    assert last.sandbox_ip == "10.243.255.254" and len(last.host_if) <= 15
    with pytest.raises(ValueError):
        SITE.slot(0)  # slot 0 is the hub's
    with pytest.raises(ValueError):
        SITE.slot(SITE.max_slot + 1)


@pytest.mark.parametrize(("subnet", "prefix"), [("10.0.0.0/24", "cln"), ("10.0.0.0/16", "toolong"),
                                                ("10.0.0.0/16", "A-B"), ("fd00::/64", "cln")])  # fmt: skip
def test_bad_site_settings(subnet: str, prefix: str) -> None:
    with pytest.raises(ValueError):
        SiteNetwork(subnet, prefix)


def test_ownership_of_names_is_by_prefix() -> None:
    assert SITE.owns_netns("cln-12") and not SITE.owns_netns("clt-12")
    assert not SITE.owns_netns("cln-x") and SITE.owns_table("cln_3") and not SITE.owns_table("cln_")
    assert SITE.owns_table("cln_site") and not SITE.owns_table("clnx_site")


def test_nft_site_table_confines_only_listed_interfaces() -> None:
    rules = [line.strip() for line in site_ruleset(SITE).splitlines()]
    assert rules[0] == f"table inet {SITE.nft_table} {{" and SITE.owns_table(SITE.nft_table)
    # Interfaces that are not sandboxes are left alone; a sandbox's traffic is dropped unless
    # it is a reply or a new TCP connection matching an element of its own interface.
    assert rules.index("iifname != @sandboxes accept") < rules.index("counter drop")
    assert "iifname . ip daddr . tcp dport @allowed_in ct state new accept" in rules
    assert "oifname . ip daddr . tcp dport @server_out ct state new accept" in rules
    assert "iifname @sandboxes counter drop" in rules and "oifname @sandboxes counter drop" in rules


def test_nft_elements_allow_only_listed_endpoints_and_the_server_port() -> None:
    net = SITE.slot(7)
    elements = server_elements(net, [Endpoint("10.243.0.1", 8081, "hub API")], 8888)
    assert elements == {
        "sandboxes": [f'"{net.host_if}"'],
        "allowed_in": [f'"{net.host_if}" . 10.243.0.1 . 8081 comment "hub API"'],
        "server_out": [f'"{net.host_if}" . {net.sandbox_ip} . 8888'],
    }
    script = add_server_script(SITE, net, [Endpoint("10.243.0.1", 8081, 'a "quoted" purpose')], 1)
    assert script.splitlines()[0] == f'add element inet cln_site sandboxes {{ "{net.host_if}" }}'
    assert 'comment "a quoted purpose"' in script  # a purpose cannot break out of the string


def test_a_servers_elements_are_found_by_its_interface_only() -> None:
    listing = {"nftables": [
        {"table": {"family": "inet", "name": "cln_site"}},
        {"set": {"name": "sandboxes", "elem": ["cln7h", "cln17h"]}},
        {"set": {"name": "allowed_in", "elem": [
            {"elem": {"val": {"concat": ["cln7h", "10.243.0.1", 8081]}, "comment": "hub"}},
            {"concat": ["cln17h", "10.243.0.1", 8081]},
        ]}},
        {"set": {"name": "server_out", "elem": [{"concat": ["cln17h", "10.243.0.70", 8888]}]}},
    ]}  # fmt: skip
    found = elements_of_interface(listing, "cln7h")
    assert found == {"sandboxes": ['"cln7h"'], "allowed_in": ['"cln7h" . 10.243.0.1 . 8081']}
    script = remove_server_script(SITE, found).splitlines()
    assert script[-1] == 'delete element inet cln_site sandboxes { "cln7h" }'  # rules go last


def make_plan(gpus: int = 0):
    settings = PlanSettings(
        "/srv/ds", "/srv/homes", "/srv/shared", Endpoint("10.243.0.1", 8081, "hub")
    )
    project = Project(id="cardio", datasets=("dcir",), limits=Limits(gpus=gpus))
    return plan_workspace(project, User("alice", 200001), settings, project_index=2)


def test_bwrap_binds_plan_mounts_and_switches_uid_without_capabilities() -> None:
    runtime = SandboxRuntime(system_paths=("/usr", "/etc", "/work/repo/.venv"),
                             passwd_file="/run/x/passwd", group_file="/run/x/group")  # fmt: skip
    argv = bwrap_argv(make_plan(), runtime, ["jupyterhub-singleuser"])
    joined = " ".join(argv)
    assert argv[0] == "bwrap" and "--die-with-parent" not in argv
    for flag in ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--new-session", "--clearenv"):
        assert flag in argv
    assert "--ro-bind /srv/ds/dcir /data/dcir" in joined
    assert "--bind /srv/homes/cardio/alice /home/alice" in joined
    assert "--bind /srv/shared/cardio /shared" in joined
    assert "--ro-bind /work/repo/.venv /work/repo/.venv" in joined
    # parents of a bound path are created traversable (bwrap would make them 0700)
    assert "--perms 0755 --dir /work" in joined and "--perms 0755 --dir /work/repo" in joined
    assert "--ro-bind /run/x/passwd /etc/passwd" in joined
    assert "--perms 1777 --tmpfs /tmp" in joined and "--perms 1777 --tmpfs /dev/shm" in joined
    assert "--proc /proc" in joined and "--dev /dev" in joined
    tail = argv[argv.index("setpriv") :]
    assert tail == ["setpriv", "--reuid=200001", "--regid=300002", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
                    "jupyterhub-singleuser"]  # fmt: skip
    assert "--dev-bind" not in argv


MOUNT_OPTIONS = {"--bind": 2, "--ro-bind": 2, "--dev-bind": 2, "--tmpfs": 1, "--proc": 1,
                 "--dev": 1}  # fmt: skip


def mounts_in_order(argv: list[str]) -> list[str]:
    """The targets of bwrap's mount options (not --dir or --symlink), in argv order."""
    targets = []
    i = 0
    while argv[i] != "--":
        option = argv[i]
        if option in MOUNT_OPTIONS:
            targets.append(argv[i + MOUNT_OPTIONS[option]])
            i += MOUNT_OPTIONS[option] + 1
        else:
            i += 1
    return targets


def hidden(argv: list[str]) -> list[tuple[str, str]]:
    """(mount, later mount at it or above it): what bwrap's in-order mounting would hide."""
    targets = mounts_in_order(argv)
    return [
        (earlier, later)
        for i, earlier in enumerate(targets)
        for later in targets[i + 1 :]
        if later == earlier or earlier.startswith(later.rstrip("/") + "/")
    ]


@pytest.mark.parametrize(
    "clone", ["/tmp/clone", "/tmp/a clone with spaces", "/root/cloisonne", "/srv/cloisonne",
              "/dev/shm/c", "/work/repo"],
)  # fmt: skip
def test_no_mount_hides_the_platform_wherever_it_is_cloned(clone: str) -> None:
    venv, package = f"{clone}/.venv", f"{clone}/extensions"
    runtime = SandboxRuntime(system_paths=("/usr", "/etc", venv, package),
                             passwd_file="/run/x/passwd", group_file="/run/x/group",
                             extra_ro_binds=((f"{package}/cfg", "/opt/cloisonne/jupyter"),))  # fmt: skip
    argv = bwrap_argv(make_plan(), runtime, ["x"])
    assert hidden(argv) == []
    targets = mounts_in_order(argv)
    assert targets[0] == "/" and venv in targets and package in targets
    if clone.startswith("/tmp/"):  # the private /tmp is mounted first, the venv inside it
        assert targets.index("/tmp") < targets.index(venv)
        assert f"--perms 0755 --dir {clone}" in " ".join(argv)


def test_the_mount_checker_sees_the_old_order_hide_a_venv_under_tmp() -> None:
    old = ["bwrap", "--tmpfs", "/", "--ro-bind", "/tmp/c/.venv", "/tmp/c/.venv",
           "--perms", "1777", "--tmpfs", "/tmp", "--"]  # fmt: skip
    assert hidden(old) == [("/tmp/c/.venv", "/tmp")]


def test_order_keeps_steps_of_one_depth_and_refuses_two_mounts_at_one_path() -> None:
    steps = [MountStep("/a/b", ("--bind", "x", "/a/b")), MountStep("/a", ("--tmpfs", "/a")),
             MountStep("/c", ("--tmpfs", "/c")), MountStep("/", ("--tmpfs", "/"))]  # fmt: skip
    assert [s.target for s in order_mounts(steps)] == ["/", "/a", "/c", "/a/b"]
    twice = [MountStep("/a", ("--tmpfs", "/a")), MountStep("/a", ("--bind", "y", "/a"))]
    with pytest.raises(ValueError, match="two sandbox mounts at /a: --tmpfs /a and --bind y /a"):
        order_mounts(twice)


def test_platform_inside_a_workspace_mount_point_is_refused() -> None:
    runtime = SandboxRuntime(system_paths=("/usr", "/etc", "/home/alice/cloisonne/.venv"))
    with pytest.raises(ValueError, match="/home/alice/cloisonne/.venv lies under the "
                       "workspace's mount point /home/alice"):  # fmt: skip
        bwrap_argv(make_plan(), runtime, ["x"])


def test_gpu_devices_only_when_granted_and_present() -> None:
    runtime = SandboxRuntime(gpu_devices=("/dev/nvidia0", "/dev/nvidiactl"))
    assert "--dev-bind" not in bwrap_argv(make_plan(gpus=0), runtime, ["x"])
    argv = bwrap_argv(make_plan(gpus=1), runtime, ["x"])
    assert " ".join(argv).count("--dev-bind") == 2
    assert "--dev-bind" not in bwrap_argv(make_plan(gpus=1), SandboxRuntime(), ["x"])


def test_environment_is_rebuilt_from_the_plan_only() -> None:
    argv = bwrap_argv(make_plan(), SandboxRuntime(), ["x"])
    pairs = {argv[i + 1]: argv[i + 2] for i, a in enumerate(argv) if a == "--setenv"}
    assert pairs == make_plan().env_dict()


def test_passwd_names_only_the_workspace_user() -> None:
    passwd, group = passwd_entries(make_plan())
    assert "alice:x:200001:300002:" in passwd and len(passwd.splitlines()) == 3
    assert group.splitlines()[1] == "cardio:x:300002:alice"


def test_bwrap_options_move_to_a_descriptor_and_the_command_stays() -> None:
    options, rest = options_file(["bwrap", "--setenv", "TOKEN", "s3cr3t", "--", "setpriv", "x"])
    assert options == b"--setenv\0TOKEN\0s3cr3t\0"
    assert rest == ["--", "setpriv", "x"]
    with pytest.raises(ValueError, match="bwrap command line"):
        options_file(["setpriv", "x"])


def test_sandbox_routes_name_only_the_allowed_endpoints_and_no_default() -> None:
    net = SiteNetwork("10.243.0.0/16", "cln").slot(3)
    allow = [
        Endpoint("10.243.0.1", 8081, "hub API"),
        Endpoint("10.243.0.1", 8090, "service"),  # same host, second port: one route
        Endpoint("192.0.2.7", 9000, "S3"),
    ]
    routes = sandbox_routes(net, allow)
    assert routes == [
        ["add", "10.243.0.1/32", "via", net.host_ip, "dev", "eth0"],
        ["add", "192.0.2.7/32", "via", net.host_ip, "dev", "eth0"],
    ]
    assert not any("default" in r or "0.0.0.0/0" in r for r in routes)
    assert sandbox_routes(net, []) == []
