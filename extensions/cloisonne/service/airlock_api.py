"""The airlock's JSON API (``/services/cloisonne/api/airlock/...``); the OpenAPI document
``openapi.yaml`` beside this module describes it and is served at ``api/openapi.json``.

Who may call what: a workspace's own server token submits (the project is the token's),
lists, reads, withdraws and resubmits its user's requests; review, release, revoke and
downloads happen outside every workspace, with a user's own login or token.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado import web

from ..airlock.errors import (
    AirlockError,
    InvalidRequest,
    InvalidTransition,
    NotReady,
    PermissionDenied,
)
from ..airlock.model import Action, Actor, Decision, FileVote
from ..airlock.repository import Conflict
from ..airlock.storage import StorageError
from .airlock import Airlock, NotFound, TooLarge, Upload
from .base import BaseHandler
from .identity import Caller

STATUS = [
    (NotFound, 404),
    (PermissionDenied, 403),
    (TooLarge, 413),
    (InvalidTransition, 409),
    (NotReady, 409),
    (Conflict, 409),
    (AirlockError, 400),
]
WORKSPACE_ACTIONS = {Action.WITHDRAW, Action.RESUBMIT}
PLAIN_ACTIONS = {"return", "reject", "withdraw", "revoke", "release", "approve"}


class AirlockHandler(BaseHandler):
    @property
    def airlock(self) -> Airlock:
        return self.settings["airlock"]

    async def actor(self) -> tuple[Caller, Actor]:
        """From a workspace token the caller acts only as a requester: a lead's view of other
        requests never enters a workspace."""
        caller = self.caller()
        if caller.project is not None:
            return caller, Actor(caller.user)
        return caller, await self.airlock.directory.actor(caller.user)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, AirlockError):
            return  # refusals are answers, not server errors
        super().log_exception(typ, value, tb)

    def _handle_request_exception(self, e: BaseException) -> None:
        for kind, status in STATUS:
            if isinstance(e, kind):
                self.set_status(status)
                self.set_header("Content-Type", "application/json")
                self.finish(json.dumps({"status": status, "message": str(e)}))
                return
        if isinstance(e, StorageError):
            self.airlock.audit.append("alert.airlock_storage", fields={"error": str(e)})
        super()._handle_request_exception(e)

    def outside_workspace(self, caller: Caller, what: str) -> None:
        if caller.project is not None:
            raise PermissionDenied(
                f"{what} happens outside workspaces: use the review pages or your own token, "
                "not a workspace's"
            )

    def body_json(self, limit: int | None = None) -> dict[str, Any]:
        if limit is None:
            body = self.json_body()
        else:
            try:
                body = json.loads(self.request.body or b"{}")
            except json.JSONDecodeError as exc:
                raise InvalidRequest(f"body is not JSON: {exc.msg}") from None
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise InvalidRequest("the body must be a JSON object")
        return body


def uploads_from(items: Any) -> list[Upload]:
    if not isinstance(items, list):
        raise InvalidRequest("'files' must be a list of {name, sha256, content (base64)}")
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidRequest("each file needs a 'name' and its 'content' in base64")
        try:
            data = base64.b64decode(item.get("content", ""), validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise InvalidRequest(f"{item['name']}: 'content' is not base64") from None
        out.append(Upload(item["name"], data, str(item.get("sha256") or "")))
    return out


class RequestsHandler(AirlockHandler):
    async def get(self) -> None:
        caller, actor = await self.actor()
        rows = self.airlock.list(actor)
        if caller.project is not None:  # a workspace lists its own project's requests
            rows = [r for r in rows if r["project"] == caller.project]
        self.finish({"requests": rows})

    async def post(self) -> None:
        caller, actor = await self.actor()
        if caller.project is None:
            self.airlock.deny(actor, "", "submit", "not a workspace token")
            raise PermissionDenied(
                "export requests are made from a workspace (its own server token fixes the "
                "project): use 'Request export…', `cloisonne export request` or the notebook API"
            )
        body = self.body_json(limit=0)
        project = body.get("project") or caller.project
        if project != caller.project:
            self.airlock.deny(actor, caller.project, "submit", f"asked for project {project}")
            raise PermissionDenied(
                f"this workspace belongs to project {caller.project!r}, not {project!r}"
            )
        uploads = uploads_from(body.get("files", []))
        why = body.get("justification", "")
        if not isinstance(why, str):
            raise InvalidRequest("'justification' must be text")
        view, created = await self.airlock.submit(
            actor, project, uploads, why, spawn_id=caller.spawn_id
        )
        self.set_status(201 if created else 200)
        self.finish({**view, "duplicate": not created})


class RequestHandler(AirlockHandler):
    async def get(self, request_id: str) -> None:
        _, actor = await self.actor()
        self.finish(self.airlock.get(request_id, actor))


def votes_from(body: dict[str, Any], files: list[str]) -> dict[str, FileVote]:
    """``{"votes": {file: {"decision", "comment"}}}``, or one ``decision`` for every file."""
    raw = body.get("votes")
    if raw is None:
        raw = {n: {"decision": body.get("decision"), "comment": body.get("comment", "")}
               for n in files}  # fmt: skip
    if not isinstance(raw, dict):
        raise InvalidRequest("'votes' maps each file name to {decision, comment}")
    out = {}
    for name, vote in raw.items():
        if not isinstance(vote, dict):
            raise InvalidRequest(f"vote on {name!r} must be an object")
        try:
            decision = Decision(vote.get("decision"))
        except ValueError:
            choices = ", ".join(d.value for d in Decision)
            raise InvalidRequest(f"vote on {name!r}: decision is one of {choices}") from None
        out[name] = FileVote(decision, str(vote.get("comment") or ""))
    return out


class ActionHandler(AirlockHandler):
    async def post(self, request_id: str, action: str) -> None:
        caller, actor = await self.actor()
        body = self.body_json(limit=0 if action == "resubmit" else None)
        comment = str(body.get("comment") or "")
        if action == "review":
            self.outside_workspace(caller, "reviewing")
            files = [f["name"] for f in self.airlock.get(request_id, actor)["files"]]
            votes = votes_from(body, files)
            view = await self.airlock.act(request_id, Action.REVIEW, actor, comment, votes=votes)
        elif action == "resubmit":
            uploads = uploads_from(body["files"]) if body.get("files") else None
            view = await self.airlock.resubmit(request_id, actor, uploads, comment)
        elif action in PLAIN_ACTIONS:
            if Action(action) not in WORKSPACE_ACTIONS:
                self.outside_workspace(caller, f"to {action} a request")
            view = await self.airlock.act(request_id, action, actor, comment)
        else:
            raise web.HTTPError(404, f"no action {action!r}")
        self.finish(view)


class FileHandler(AirlockHandler):
    async def get(self, request_id: str, name: str) -> None:
        caller, actor = await self.actor()
        self.outside_workspace(caller, "downloading")
        f, data = await self.airlock.download(request_id, name, actor)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("X-Content-SHA256", f.sha256)
        filename = quote(f.name.rsplit("/", 1)[-1])
        self.set_header("Content-Disposition", f"attachment; filename*=UTF-8''{filename}")
        self.finish(data)


class MetricsHandler(AirlockHandler):
    async def get(self) -> None:
        if not self.airlock.settings.metrics_public and not self.caller().admin:
            raise web.HTTPError(403, "metrics are for admins (or set metrics_public)")
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.airlock.metrics.registry))


OPENAPI = Path(__file__).with_name("openapi.yaml")


class OpenAPIHandler(web.RequestHandler):
    _doc: bytes | None = None

    def get(self) -> None:
        if OpenAPIHandler._doc is None:
            OpenAPIHandler._doc = json.dumps(yaml.safe_load(OPENAPI.read_text())).encode()
        self.set_header("Content-Type", "application/json")
        self.finish(OpenAPIHandler._doc)


ROUTES: list[tuple[str, type[web.RequestHandler]]] = [
    (r"api/openapi.json", OpenAPIHandler),
    (r"api/airlock/requests", RequestsHandler),
    (r"api/airlock/requests/([^/]+)", RequestHandler),
    (r"api/airlock/requests/([^/]+)/files/(.+)", FileHandler),
    (r"api/airlock/requests/([^/]+)/([a-z]+)", ActionHandler),
    (r"metrics", MetricsHandler),
]
