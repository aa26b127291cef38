"""Routes the guard closes before any Jupyter handler sees them, and the guarded /files/."""

from __future__ import annotations

import json
import re

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.files.handlers import FilesHandler
from tornado import web
from tornado.routing import AnyMatches, PathMatches, Rule

from .contents import ROUTE
from .policy import EXPORT_HINT

# A kernelspec folder can be user-writable: serve nothing from it but its logo images.
_NOT_A_LOGO = r"(?!logo-[A-Za-z0-9_-]+\.(?:png|svg)$).+"

# (method or "*", path regex under the base URL, reason)
CLOSED_ROUTES: list[tuple[str, str, str]] = [
    ("*", r"nbconvert/.*", "Exporting notebooks (nbconvert) is not allowed. " + EXPORT_HINT),
    ("*", r"api/nbconvert/?.*", "Exporting notebooks (nbconvert) is not allowed. " + EXPORT_HINT),
    ("*", r"view/.*", "Opening files in a new browser tab is not allowed. " + EXPORT_HINT),
    ("POST", r"api/events/?", "Events cannot be posted from the browser."),
    ("POST", r"lab/api/plugins/?", "Plugins cannot be enabled or disabled from the browser."),
    ("PUT", r"lab/api/plugins/?", "Plugins cannot be enabled or disabled from the browser."),
    ("*", r"kernelspecs/[^/]+/" + _NOT_A_LOGO, "Only kernel logos are served from kernelspecs."),
]


class ClosedRouteHandler(JupyterHandler):
    """Refuses the request with a message saying why, and records the refusal."""

    def initialize(self, closed: tuple[str, re.Pattern, str]) -> None:
        self.closed = closed

    async def prepare(self) -> None:
        path = self.request.path[len(self.base_url) :]
        _method, _pattern, reason = self.closed
        try:
            await self.settings["cloisonne_guard"].record_route(self.request.method, path, reason)
        except web.HTTPError as exc:  # the audit service is down: say so, still refuse
            self._refuse(exc.status_code, exc.log_message or "")
            return
        self._refuse(403, reason)

    def _refuse(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message, "reason": "closed by the workspace guard"}))


def install(web_app: web.Application, base_url: str) -> None:
    """Put the closed routes ahead of every handler, including those that extensions loaded
    after the guard add (tornado tries its routers in order; a router that matches nothing
    passes the request on)."""
    rules = [
        Rule(_MethodAndPath(base_url + pattern, method), ClosedRouteHandler,
             {"closed": (method, re.compile(pattern), reason)})
        for method, pattern, reason in CLOSED_ROUTES
    ]  # fmt: skip
    # The application's own router class, which knows how to run RequestHandler targets.
    router = type(web_app.wildcard_router)(web_app, rules)
    web_app.default_router.rules.insert(0, Rule(AnyMatches(), router))


class _MethodAndPath(PathMatches):
    def __init__(self, path_pattern: str, method: str):
        super().__init__(path_pattern + "$")
        self.method = method

    def match(self, request):  # noqa: ANN001, ANN201 - tornado's signature
        if self.method != "*" and request.method != self.method:
            return None
        return super().match(request)


class GuardedFilesHandler(FilesHandler):
    """/files/ through the contents manager, marked as a download for the policy."""

    async def get(self, path: str, include_body: bool = True) -> None:  # type: ignore[override]
        token = ROUTE.set("files")
        try:
            await super().get(path, include_body=include_body)
        finally:
            ROUTE.reset(token)
