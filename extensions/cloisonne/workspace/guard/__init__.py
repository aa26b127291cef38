"""The workspace guard: a Jupyter Server extension enabled in every workspace (runs in its server;
imports workspace and the pure audit journal only).

It closes the routes that hand files to the browser, makes the contents manager the one choke
point for file bytes, meters what kernels and terminals send to the browser, audits every
decision before serving (refusing with 503 when that cannot be done), and checks at start that
the workspace cannot reach outside addresses. On the sandbox backend decisions go to the audit
journal the spawner hands over (microseconds; forwarded into the chain by the service, see
cloisonne.audit.journal); elsewhere to the service's API over HTTP.

It is switched on from the command line the spawners build (cloisonne.workspace.server_args)
and from a read-only config directory, so user-level configuration cannot turn it off; if it
cannot load, the server does not start (`reraise_server_extension_failures`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from jupyter_server.serverapp import ServerApp
from tornado import web
from traitlets import Float, Integer, Unicode
from traitlets.config import LoggingConfigurable

from ...core.values import parse_size
from ..egress import DEFAULT_PROBES, EarlyProbe, parse_probes, reachable
from .audit_client import AuditClient
from .journal_sink import JournalSink, journal_sink_from_env
from .meter import OutflowMeter, meter_terminals
from .policy import Decision, GuardSettings


class WorkspaceGuard(LoggingConfigurable):
    max_text_bytes = Integer(
        10 * 1024**2, config=True, help="Largest text or notebook file opened in the browser."
    )
    max_image_bytes = Integer(
        512 * 1024, config=True, help="Largest image sent to the browser for display."
    )
    max_upload_bytes = Integer(
        100 * 1024**2, config=True, help="Largest file that can be uploaded into the workspace."
    )
    upload_abandon_seconds = Float(
        3600.0,
        config=True,
        help="Seconds after its last chunk that an unfinished chunked upload is removed (and "
        "the removal recorded). Overridden by $CLOISONNE_UPLOAD_ABANDON_SECONDS.",
    )
    egress_probes = Unicode(
        " ".join(DEFAULT_PROBES),
        config=True,
        help="'host:port' addresses (space-separated) the workspace must NOT reach; probed at "
        "start. If any accepts a connection, the server refuses to start and raises an alert. "
        "Overridden by $CLOISONNE_EGRESS_PROBES.",
    )
    egress_timeout = Float(0.3, config=True, help="Seconds each egress probe waits.")
    outflow_flush_seconds = Float(
        5.0, config=True, help="How often metered outflow is reported to the audit log."
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._site_overrides(os.environ)
        self.settings = GuardSettings(self.max_text_bytes, self.max_image_bytes,
                                      self.max_upload_bytes)  # fmt: skip
        # the journal the spawner passed (sandbox backend), else synchronous HTTP appends
        service_url = os.environ.get("CLOISONNE_SERVICE_URL", "")
        self.client: AuditClient | JournalSink = journal_sink_from_env(service_url) or AuditClient(
            service_url
        )
        self.meter = OutflowMeter(self._record_outflow, flush_every=self.outflow_flush_seconds)

    def _site_overrides(self, env: Mapping[str, str]) -> None:
        """The site's settings the spawner put in the server's environment (which user code
        cannot change) outrank the config files."""
        if env.get("CLOISONNE_UPLOAD_MAX"):
            self.max_upload_bytes = parse_size(env["CLOISONNE_UPLOAD_MAX"])
        if env.get("CLOISONNE_UPLOAD_ABANDON_SECONDS"):
            self.upload_abandon_seconds = float(env["CLOISONNE_UPLOAD_ABANDON_SECONDS"])

    @property
    def abandon_check_seconds(self) -> float:
        """How often open chunked uploads are checked for abandonment."""
        return min(max(self.upload_abandon_seconds / 4, 0.05), 30.0)

    async def record(self, event: str, route: str, path: str, decision: Decision,
                     size: int | None = None, sha256: str | None = None,
                     **extra: Any) -> None:  # fmt: skip
        await self.client.append(
            event, route=route, path=path, allowed=decision.allowed, reason=decision.reason,
            bytes=size, sha256=sha256, **extra,
        )  # fmt: skip

    async def record_refusal(self, event: str, route: str, path: str, reason: str,
                             **extra: Any) -> None:  # fmt: skip
        await self.client.append(event, route=route, path=path, allowed=False, reason=reason,
                                 **extra)  # fmt: skip

    async def record_route(self, method: str, path: str, reason: str) -> None:
        await self.client.append("guard.route", route=path.split("/", 1)[0], method=method,
                                 path=path, allowed=False, reason=reason)  # fmt: skip

    async def _record_outflow(self, counts: dict[str, int]) -> None:
        await self.client.append("guard.outflow", bytes=counts, total=dict(self.meter.total))

    def egress_self_test(self) -> None:
        targets = parse_probes(os.environ.get("CLOISONNE_EGRESS_PROBES", self.egress_probes))
        early = EarlyProbe.current
        if early is not None and early.targets == targets and early.timeout == self.egress_timeout:
            open_targets = early.wait()  # started by the launcher, already done
        else:
            open_targets = reachable(targets, self.egress_timeout)
        if not open_targets:
            self.log.info("cloisonne guard: egress self-test passed (%d probes)", len(targets))
            return
        message = (
            f"Egress self-test failed: this workspace can reach {', '.join(open_targets)}. "
            "The network isolation is not enforced, so the workspace refuses to start."
        )
        # the server's event loop is not running yet: a blocking append
        self.client.append_now([("alert.egress_open",
                                 {"reachable": open_targets, "message": message})])  # fmt: skip
        raise RuntimeError(message)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "cloisonne.workspace.guard"}]


def _load_jupyter_server_extension(serverapp: ServerApp) -> None:
    from .contents import GuardedContentsManager
    from .meter import MeteredKernelConnection
    from .routes import GuardedFilesHandler, install

    # Refuse to run half-guarded: each piece must be the guard's own.
    checks = {
        "ServerApp.contents_manager_class": isinstance(
            serverapp.contents_manager, GuardedContentsManager
        ),
        "ContentsManager.files_handler_class": issubclass(
            serverapp.contents_manager.files_handler_class, GuardedFilesHandler
        ),
        "ServerApp.kernel_websocket_connection_class": issubclass(
            serverapp.kernel_websocket_connection_class, MeteredKernelConnection
        ),
    }
    wrong = [name for name, ok in checks.items() if not ok]
    if wrong:
        raise RuntimeError(f"cloisonne guard: {', '.join(wrong)} must be the guard's own")
    guard = WorkspaceGuard(parent=serverapp)
    guard.egress_self_test()
    web_app: web.Application = serverapp.web_app
    web_app.settings["cloisonne_guard"] = guard
    install(web_app, serverapp.base_url)
    # "Request export…" from JupyterLab: the server submits with the workspace's own token
    from ..export_handlers import install as install_exports

    install_exports(web_app, serverapp.base_url, serverapp.root_dir)
    meter_terminals(guard)
    serverapp.log.info("cloisonne guard: active")
