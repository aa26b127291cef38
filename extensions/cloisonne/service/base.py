"""The handler every service route extends: hub OAuth, the caller, JSON bodies and errors."""

from __future__ import annotations

import json
from typing import Any

from jupyterhub.services.auth import HubOAuthenticated
from tornado import web

from ..audit.store import AuditStore
from .identity import Caller, caller_from_model

MAX_BODY = 256 * 1024


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    def initialize(self) -> None:
        # the application's authenticator (make_app's), not HubOAuth's process-wide instance
        self.hub_auth = self.settings["hub_auth"]

    @property
    def store(self) -> AuditStore:
        return self.settings["audit_store"]

    def caller(self) -> Caller:
        model = self.get_current_user()
        if not model:
            raise web.HTTPError(403, "a hub token is required")
        return caller_from_model(model)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            reason = exc.log_message % exc.args if exc.args else exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status_code, "message": reason}))

    def json_body(self) -> Any:
        if len(self.request.body) > MAX_BODY:
            raise web.HTTPError(413, f"body over {MAX_BODY} bytes")
        try:
            return json.loads(self.request.body or b"null")
        except json.JSONDecodeError as exc:
            raise web.HTTPError(400, f"body is not JSON: {exc.msg}") from None
