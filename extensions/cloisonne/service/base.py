"""The handler every service route extends: hub OAuth, the caller, JSON bodies and errors."""

from __future__ import annotations

import json
from typing import Any

from jupyterhub.services.auth import HubOAuthenticated
from tornado import web

from ..audit.store import AuditStore
from ..core.workspace_proof import refusal
from .identity import Caller, caller_from_model, presented_token

# Recorded, with the reason, whenever a token claims a workspace it cannot prove to be.
WORKSPACE_REFUSED = "service.workspace_refused"

MAX_BODY = 256 * 1024


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    def initialize(self) -> None:
        # the application's authenticator (make_app's), not HubOAuth's process-wide instance
        self.hub_auth = self.settings["hub_auth"]

    @property
    def store(self) -> AuditStore:
        return self.settings["audit_store"]

    async def prepare(self) -> None:
        """Who is calling. A token scoped to one server claims to be that workspace; the claim
        stands only with the proof the spawner recorded (cloisonne.core.workspace_proof), so a
        user's own token, or the workspace's token used from outside it, is refused here and
        the refusal recorded."""
        model = self.get_current_user()
        self._caller = caller_from_model(model) if model else None
        claim = self._caller
        if claim is None or claim.project is None:
            return
        server = f"{claim.user}/{claim.project}"
        token = presented_token(self.request.headers.get("Authorization", ""))
        # the socket's peer, never X-Forwarded-For / X-Real-IP, which a caller writes
        peer = getattr(self.request.connection.context, "address", ("",))
        peer_ip = peer[0] if isinstance(peer, tuple) and peer else ""
        directory = self.settings["directory"]
        proof = await directory.workspace_proof(claim.user, claim.project)
        reason = refusal(server, proof, token, peer_ip)
        if reason:  # the cache may predate a new start of the workspace
            proof = await directory.workspace_proof(claim.user, claim.project, fresh=True)
            reason = refusal(server, proof, token, peer_ip)
        if reason:
            self.store.append(WORKSPACE_REFUSED, user=claim.user, project=claim.project,
                              fields={"server": server, "peer": peer_ip,
                                      "path": self.request.path, "reason": reason})  # fmt: skip
            raise web.HTTPError(403, reason)
        assert proof is not None
        self._caller = Caller(claim.user, claim.admin, claim.project, proof.spawn_id)

    def caller(self) -> Caller:
        if self._caller is None:
            raise web.HTTPError(403, "a hub token is required")
        return self._caller

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
