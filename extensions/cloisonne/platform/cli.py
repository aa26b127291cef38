"""The `cloisonne` command: run the local platform and administer it.

cloisonne up        start hub, proxy and demo content; Ctrl-C stops and cleans everything
cloisonne down      stop a platform started by `up` (from another terminal)
cloisonne sweep     remove leftover namespaces, interfaces, nft tables and cgroups
cloisonne validate  check a projects.yaml file
cloisonne settings  list the environment variables the hub configuration reads
cloisonne export    ask for files to leave a workspace (inside one)
cloisonne project   suspend, resume or extend a project
cloisonne projects  the register of projects (csv or json)
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
from ..hub.config import SETTINGS, setting
from ..workspace import export as export_cli
from . import audit_cli, keys_cli, project_cli

UP_PID_FILE = "up.pid"  # the `cloisonne up` process, which `cloisonne down` asks to stop
MAX_RESTARTS, RESTART_WINDOW_S = 5, 300  # a hub that dies more often than this stays down

NEEDS_ROOT = (
    "Cloisonné needs root for this: each workspace runs in its own network namespace with "
    "nftables rules and cgroup limits, and is switched to its user's uid; only root can set "
    "these up. Run it with sudo (or as root)."
)


def _hub_from_env():  # noqa: ANN202 - LocalHub import kept lazy (pulls requests)
    from .localhub import LocalHub

    env = os.environ
    bind = setting(env, "CLOISONNE_BIND_URL")
    state = Path(setting(env, "CLOISONNE_STATE"))
    return LocalHub(
        state=state,
        projects_file=Path(setting(env, "CLOISONNE_PROJECTS")),
        datasets=Path(setting(env, "CLOISONNE_DATASETS") or state / "datasets"),
        port=int(bind.rsplit(":", 1)[1].rstrip("/")),
        hub_port=int(setting(env, "CLOISONNE_HUB_PORT")),
        proxy_api_port=int(setting(env, "CLOISONNE_PROXY_API_PORT")),
        subnet=setting(env, "CLOISONNE_SUBNET"),
        prefix=setting(env, "CLOISONNE_PREFIX"),
        cull_timeout=int(setting(env, "CLOISONNE_CULL_TIMEOUT")),
        idp_port=int(setting(env, "CLOISONNE_OIDC_PORT")),
        db=setting(env, "CLOISONNE_DB"),
        # LocalHub passes on only the settings it is given: the research-data ones too
        extra_env={k: env[k] for k in DATA_SETTINGS if env.get(k)},
    )


DATA_SETTINGS = ("CLOISONNE_S3", "CLOISONNE_S3_PORT", "CLOISONNE_PROJECT_DATA")


def _require_root() -> None:
    if os.geteuid() != 0:
        raise SystemExit(NEEDS_ROOT)


def cmd_up(args: argparse.Namespace) -> int:
    _require_root()
    from ..data.demo import provision_demo
    from . import data_platform
    from .demo import DEMO_ADMINS, DEMO_USERS, make_demo_datasets

    hub = _hub_from_env()
    specs = load_projects(hub.projects_file)
    pid_file = hub.state / "jupyterhub.pid"
    if pid_file.exists() and _alive(int(pid_file.read_text() or 0)):
        raise SystemExit(
            f"A hub is already running (pid {pid_file.read_text()}); `make down` first."
        )
    assert hub.datasets is not None
    make_demo_datasets(hub.datasets)
    if not (hub.state / "idp" / "accounts.json").exists():
        hub.write_users(DEMO_USERS, DEMO_ADMINS)  # accounts at the embedded OIDC provider
    data_root = data_platform.project_data_root(hub.env(), hub.state)
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


def cmd_down(args: argparse.Namespace) -> int:
    _require_root()
    hub = _hub_from_env()
    up_pid = _read_pid(hub.state / UP_PID_FILE)
    if up_pid and _alive(up_pid):
        # `cloisonne up` restarts a hub that exits: ask it to stop the platform instead.
        os.kill(up_pid, signal.SIGTERM)
        for _ in range(1200):
            if not _alive(up_pid):
                break
            time.sleep(0.1)
    pid_file = hub.state / "jupyterhub.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().strip() or 0)
        if _alive(pid):
            hub.stop_all_servers()
            os.kill(pid, signal.SIGTERM)  # the `up` process notices and cleans up too
            for _ in range(100):
                if not _alive(pid):
                    break
                time.sleep(0.1)
    from ..backends.sandbox.sweep import sweep

    hub._stop_leftover_proxy()
    hub.idp.stop()
    from ..data.s3 import S3Store

    S3Store(hub.state / "s3").stop()  # by the PID in its state folder, if it runs
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
    for name, (default, help_text) in SETTINGS.items():
        print(f"{name}={os.environ.get(name, default)}\n    {help_text}")
    return 0


def _roles(name: str, specs: list, admins: tuple[str, ...]) -> str:
    member = [s.project.id for s in specs if name in s.members]
    lead = [s.project.id for s in specs if name in s.leads]
    parts = [f"researcher in {', '.join(member)}"] if member else []
    parts += [f"lead of {', '.join(lead)}"] if lead else []
    parts += ["hub admin"] if name in admins else []
    return "; ".join(parts) or "no project"


def _read_pid(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (ProcessLookupError, FileNotFoundError):
        return False
    # A process that has exited but whose parent has not reaped it yet is done ("Z").
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


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
    sub.add_parser("settings", help="list hub settings").set_defaults(func=cmd_settings)
    audit_cli.add_parser(sub)
    data_cli.add_parser(sub)
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
        state = Path(setting(os.environ, "CLOISONNE_STATE"))
        hub_db = (
            setting(os.environ, "CLOISONNE_DB_URL") or f"sqlite:///{state / 'jupyterhub.sqlite'}"
        )
        os.environ.setdefault(audit_cli.DB_ENV, hub_db)
        return audit_cli.main(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
