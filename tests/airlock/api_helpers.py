"""Run the service's real tornado app in-process with a stand-in for the hub.

Tokens: ``ws:<user>:<project>`` acts as a workspace's own server token, ``user:<name>`` as a
user's token outside any workspace, ``admin:<name>`` as an admin's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
from dataclasses import dataclass
from typing import Any

from cloisonne.audit.store import AuditStore
from cloisonne.core.projects import Project
from cloisonne.core.workspace_proof import WorkspaceProof, token_digest
from cloisonne.service.airlock import Airlock
from cloisonne.service.app import make_app
from cloisonne.service.directory import StaticDirectory
from cloisonne.service.settings import AirlockSettings
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httpserver import HTTPServer

PREFIX = "/services/cloisonne/"


class FakeHubAuth:
    access_scopes: set[str] = set()
    base_url = PREFIX

    def get_user(self, handler: Any) -> dict | None:
        kind, _, rest = (
            handler.request.headers.get("Authorization", "").removeprefix("token ").partition(":")
        )
        if kind == "ws":
            user, _, project = rest.partition(":")
            return {"kind": "user", "name": user, "admin": False,
                    "scopes": [f"access:servers!server={user}/{project}"]}  # fmt: skip
        if kind in ("user", "admin"):
            return {"kind": "user", "name": rest, "admin": kind == "admin", "scopes": []}
        return None

    def _persist_url_token_if_set(self, handler: Any) -> None:
        pass


class ProvingDirectory(StaticDirectory):
    """As the hub answers for running workspaces: ``ws:<user>:<project>`` is the workspace's
    own token, sent from any address, unless a test puts another proof in ``proofs``."""

    async def workspace_proof(self, user: str, server: str, fresh: bool = False
                              ) -> WorkspaceProof | None:  # fmt: skip
        if f"{user}/{server}" in self.proofs:
            return self.proofs[f"{user}/{server}"]
        return WorkspaceProof(f"spawn-{user}-{server}", token_digest(f"ws:{user}:{server}"))


def directory() -> StaticDirectory:
    return ProvingDirectory(
        projects={
            "cardio": Project("cardio", approvals_required=2),
            "onco": Project("onco", approvals_required=1),
        },
        leads={"carol": {"cardio"}, "dave": {"cardio"}, "alice": {"onco"}},
    )


def upload(name: str, data: bytes, sha: str | None = None) -> dict[str, str]:
    return {"name": name, "sha256": sha if sha is not None else hashlib.sha256(data).hexdigest(),
            "content": base64.b64encode(data).decode()}  # fmt: skip


@dataclass
class Response:
    code: int
    body: bytes
    headers: Any

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.base = f"http://127.0.0.1:{service.port}{PREFIX}"

    async def call(self, method: str, path: str, token: str = "", body: Any = None,
                   headers: dict[str, str] | None = None) -> Response:  # fmt: skip
        self.service.serve()  # on the running test's event loop
        kw: dict[str, Any] = {
            "method": method,
            "request_timeout": 60,
            "headers": {"Authorization": f"token {token}", **(headers or {})},
        }
        # fmt: skip
        if body is not None or method in ("POST", "PUT", "PATCH"):
            kw["body"] = json.dumps(body if body is not None else {})
        try:
            r = await AsyncHTTPClient().fetch(self.base + path, **kw)
        except HTTPClientError as exc:
            assert exc.response is not None
            r = exc.response
        return Response(r.code, r.body, r.headers)

    async def submit(self, token: str, files: list, why: str = "table 1 of the paper") -> Response:
        return await self.call("POST", "api/airlock/requests", token,
                               {"justification": why, "files": files})  # fmt: skip

    async def act(self, rid: str, action: str, token: str, **body: Any) -> Response:
        return await self.call("POST", f"api/airlock/requests/{rid}/{action}", token, body)


class Service:
    def __init__(self, tmp: Any, **settings: Any) -> None:
        self.audit = AuditStore(f"sqlite:///{tmp / 'hub.sqlite'}")
        s = AirlockSettings(store_dir=str(tmp / "airlock"), **settings)
        self.airlock = Airlock(self.audit, directory(), s)
        self.app = make_app(self.audit, prefix=PREFIX, airlock=self.airlock,
                            hub_auth=FakeHubAuth())  # fmt: skip
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.server: HTTPServer | None = None
        self.client = Client(self)

    def serve(self) -> None:
        if self.server is None:
            self.server = HTTPServer(self.app, max_body_size=64 * 1024**2)
            self.server.add_sockets([self.sock])

    def events(self) -> list:
        return list(self.audit.iter_events())

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.sock.close()
        self.audit.close()
