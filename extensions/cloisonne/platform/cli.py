"""The `cloisonne` command: run the local platform and administer it.

cloisonne up        start hub, proxy and demo content; Ctrl-C stops and cleans everything
cloisonne down      stop a platform started by `up` (from another terminal)
cloisonne sweep     remove leftover namespaces, interfaces, nft tables and cgroups
cloisonne validate  check a projects.yaml file
cloisonne settings  list the environment variables the hub configuration reads
cloisonne export    ask for files to leave a workspace (inside one)
cloisonne project   suspend, resume or extend a project
cloisonne projects  the register of projects (csv or json)
cloisonne packages  the package proxy's wheelhouse and allow-lists
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ..core.projects import ProjectError, load_projects
from ..data import cli as data_cli
from ..hub import site
from ..hub.config import SETTINGS, setting
from ..hub.reference import reference_markdown
from ..hub.site import Site, SiteError
from ..procs import alive, read_pid, stop_pid
from ..workspace import export as export_cli
from . import audit_cli, keys_cli, packages_cli, project_cli

UP_PID_FILE = "up.pid"  # the `cloisonne up` process, which `cloisonne down` asks to stop
MAX_RESTARTS, RESTART_WINDOW_S = 5, 300  # a hub that dies more often than this stays down

NEEDS_ROOT = (
    "Cloisonné needs root for this: each workspace runs in its own network namespace with "
    "nftables rules and cgroup limits, and is switched to its user's uid; only root can set "
    "these up. Run it with sudo (or as root)."
)


def _site() -> Site:
    try:
        return Site.from_env(os.environ)
    except SiteError as exc:
        raise SystemExit(f"Cloisonné: {exc}") from None


def _hub_from_env():  # noqa: ANN202 - LocalHub import kept lazy (pulls requests)
    from .localhub import LocalHub

    site = _site()
    return LocalHub(
        state=site.state_path,
        projects_file=Path(site.projects),
        datasets=site.datasets_path,
        port=int(site.bind_url.rsplit(":", 1)[1].rstrip("/")),
        hub_port=site.hub_port,
        proxy_api_port=site.proxy_api_port,
        subnet=site.subnet,
        prefix=site.prefix,
        cull_timeout=site.cull_timeout,
        cull_every=site.cull_every,
        idp_port=site.oidc_port,
        db=site.db,
        # every other setting the operator gave (service port, S3, airlock caps...) too
        extra_env={k: v for k, v in os.environ.items() if k.startswith("CLOISONNE_") and v},
    )


def _require_root() -> None:
    if os.geteuid() != 0:
        raise SystemExit(NEEDS_ROOT)


def cmd_up(args: argparse.Namespace) -> int:
    _require_root()
    from ..data.demo import provision_demo
    from .demo import DEMO_ADMINS, DEMO_USERS, make_demo_datasets

    hub = _hub_from_env()
    # the package proxy in the mode this machine allows, unless the site says otherwise
    hub.extra_env.setdefault("CLOISONNE_PACKAGES", "auto")
    specs = load_projects(hub.projects_file)
    pid_file = hub.state / "jupyterhub.pid"
    if alive(read_pid(pid_file)):
        raise SystemExit(
            f"A hub is already running (pid {pid_file.read_text()}); `make down` first."
        )
    assert hub.datasets is not None
    make_demo_datasets(hub.datasets)
    if not (hub.state / "idp" / "accounts.json").exists():
        hub.write_users(DEMO_USERS, DEMO_ADMINS)  # accounts at the embedded OIDC provider
    data_root = Site.from_env(hub.env()).project_data_path
    provision_demo(specs, state=hub.state, datasets=hub.datasets, data_root=data_root)
    up_pid_file = hub.state / UP_PID_FILE
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print("Starting Cloisonné (hub log: %s) ..." % (hub.state / "hub.log"), flush=True)
    try:
        hub.start()
        print(f"\n  Cloisonné is running at {hub.url}/\n")
        print(
            f"  Sign-in: the embedded OIDC provider at {hub.idp.issuer}/ (accounts in "
            f"{hub.state / 'idp' / 'accounts.json'}); database: {hub.db}"
        )
        _print_data(hub, data_root)
        _print_packages(hub)
        print("  Demo logins (user / password / role):")
        for name, password in DEMO_USERS.items():
            print(f"    {name:<8} {password:<12} {_roles(name, specs, DEMO_ADMINS)}")
        print(
            "\n  Projects: see hub_config/projects.yaml. Stop with Ctrl-C or `make down`.\n",
            flush=True,
        )
        up_pid_file.write_text(str(os.getpid()))
        restarts: list[float] = []
        while not stopping:
            time.sleep(0.5)
            if not stopping and hub.restart_package_proxy():
                print("The package proxy had exited; it was started again.", flush=True)
            if stopping or hub.proc is None or hub.proc.poll() is None:
                continue
            # The hub died (killed, crashed): start it again. Workspaces, proxy, provider and
            # store live on and the new hub re-attaches them; only a hub that keeps dying
            # takes the platform down.
            now = time.monotonic()
            restarts = [t for t in restarts if now - t < RESTART_WINDOW_S] + [now]
            if len(restarts) > MAX_RESTARTS:
                print(f"The hub died {len(restarts)} times in {RESTART_WINDOW_S} s; stopping.")
                break
            print(f"The hub exited ({hub.proc.returncode}); restarting it ...", flush=True)
            hub.start()
            print("The hub is back; running workspaces were kept.", flush=True)
    finally:
        up_pid_file.unlink(missing_ok=True)
        print("Stopping workspaces, hub and proxy; removing namespaces, nft tables, cgroups ...")
        found = hub.teardown()
        leftover = {k: v for k, v in found.items() if v}
        print(f"Stopped. Removed leftovers: {leftover}" if leftover else "Stopped cleanly.")
    return 0


def _print_data(hub: Any, data_root: Path) -> None:  # noqa: ANN401 - a LocalHub
    """Where a researcher finds the data: the extract at /data and the project's S3 bucket."""
    present = sorted(p.name for p in data_root.glob("[!.]*") if p.is_dir())
    print(
        f"  Research data: extracts in {data_root}/<project>, read-only at /data in the "
        f"project's workspaces (now: {', '.join(present) or 'none'}; more with "
        "`cloisonne data provision PROJECT`)"
    )
    store = hub.s3_store()
    if store is None:
        print("  S3: off (CLOISONNE_S3=off)")
        return
    print(
        f"  S3: {store.endpoint_url} (SeaweedFS, pid {store.pid()}, data in {store.data}): "
        "bucket cloisonne-<project>, its credential in each workspace's AWS_* variables"
    )


def _print_packages(hub: Any) -> None:  # noqa: ANN401 - a LocalHub
    """Where pip in a workspace gets packages, and which ones."""
    proxy = hub.package_proxy()
    if proxy is None:
        print("  Packages: off (CLOISONNE_PACKAGES=off): pip in a workspace has no index")
        return
    s = proxy.settings
    source = f"from {s.upstream}" if s.mode == "connected" else f"from {s.root / 'wheelhouse'}"
    print(
        f"  Packages: http://{s.host}:{s.port}/<project>/simple/ ({s.mode}, pid {proxy.pid()}, "
        f"{source}); site allow-list: {' '.join(s.allow) or 'empty'} (docs/packages.md)"
    )


def cmd_down(args: argparse.Namespace) -> int:
    _require_root()
    hub = _hub_from_env()
    up_pid = read_pid(hub.state / UP_PID_FILE)
    # `cloisonne up` restarts a hub that exits: ask it to stop the platform instead.
    stop_pid(up_pid, timeout=120, then=None)
    pid_file = hub.state / "jupyterhub.pid"
    if pid_file.exists():
        pid = read_pid(pid_file)
        if alive(pid):
            hub.stop_all_servers()
            stop_pid(pid, timeout=10, then=None)  # the `up` process notices and cleans up too
    from ..backends.sandbox.sweep import sweep

    hub._stop_leftover_proxy()
    hub.idp.stop()
    from ..data.s3 import S3Store

    S3Store(hub.state / "s3").stop()  # by the PID in its state folder, if it runs
    from ..packages.process import PackageProxy
    from ..packages.settings import ProxySettings

    PackageProxy(ProxySettings(state_dir=str(hub.state / "packages"))).stop()
    if (hub.state / "pg").exists():  # `make up DB=postgres` ran; stop its cluster by PID
        from .pg import PrivatePostgres

        PrivatePostgres(hub.state / "pg").stop()
    found = sweep(hub.site)
    print("Stopped; removed:", {k: v for k, v in found.items() if v} or "nothing left over")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    _require_root()
    from ..backends.sandbox.network import SiteNetwork
    from ..backends.sandbox.sweep import sweep

    site = SiteNetwork(setting(os.environ, "CLOISONNE_SUBNET"), args.prefix)
    found = sweep(site)
    print({k: v for k, v in found.items() if v} or "nothing left over")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        specs = load_projects(args.file, datasets_root=args.datasets)
    except ProjectError as exc:
        print(exc, file=sys.stderr)
        return 1
    for spec in specs:
        p = spec.project
        print(
            f"{p.id}: {len(spec.members)} members, {len(spec.leads)} leads, "
            f"datasets {', '.join(p.datasets) or '-'}"
        )
    return 0


def cmd_service(args: argparse.Namespace) -> int:
    from ..service.__main__ import main as service_main

    service_main()
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    """The settings from the Site traits: current values, or the docs' reference table."""
    if args.markdown:
        print(reference_markdown(), end="")
        return 0
    for name, (default, help_text) in SETTINGS.items():
        value = "(set)" if os.environ.get(name) and name in site.SECRET_SETTINGS else None
        print(f"{name}={value or os.environ.get(name, default)}\n    {help_text}")
    return 0


def _roles(name: str, specs: list, admins: tuple[str, ...]) -> str:
    member = [s.project.id for s in specs if name in s.members]
    lead = [s.project.id for s in specs if name in s.leads]
    parts = [f"researcher in {', '.join(member)}"] if member else []
    parts += [f"lead of {', '.join(lead)}"] if lead else []
    parts += ["hub admin"] if name in admins else []
    return "; ".join(parts) or "no project"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cloisonne", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="run the local platform").set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop the local platform").set_defaults(func=cmd_down)
    p = sub.add_parser("sweep", help="remove leftover sandbox resources of a hub")
    p.add_argument("--prefix", default=setting(os.environ, "CLOISONNE_PREFIX"))
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("validate", help="check a projects.yaml")
    p.add_argument("file")
    p.add_argument("--datasets", help="also check that dataset folders exist here")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("settings", help="list the site's settings (docs/configuration.md)")
    p.add_argument("--markdown", action="store_true", help="print docs/configuration.md")
    p.set_defaults(func=cmd_settings)
    audit_cli.add_parser(sub)
    data_cli.add_parser(sub)
    packages_cli.add_parser(sub)
    export_cli.add_parser(sub)
    keys_cli.add_parser(sub)
    project_cli.add_parsers(sub)
    sub.add_parser("service", help="run the cloisonne hub service (audit log API)").set_defaults(
        func=cmd_service
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.command == "audit":
        # The audit log lives in the hub's database unless told otherwise.
        os.environ.setdefault(audit_cli.DB_ENV, _site().hub_db_url)
        return audit_cli.main(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
