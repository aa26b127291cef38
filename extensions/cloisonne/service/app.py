"""The service's web application: routes, authentication, JSON errors."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from jupyterhub.services.auth import HubOAuth
from jupyterhub.utils import url_path_join
from tornado import web

from ..audit.events import EVENT_TYPE, NewEvent
from ..audit.store import AuditStore
from .airlock_api import ROUTES as AIRLOCK_ROUTES
from .base import BaseHandler
from .directory import HubDirectory
from .outflow import OutflowBudget, account_outflow
from .review_pages import ROUTES as PAGE_ROUTES

MAX_EVENTS = 500


class AuditEventsHandler(BaseHandler):
    """POST: a workspace appends events for its own user and project. Nothing else is served:
    there is no route to change or delete an event."""

    async def post(self) -> None:
        caller = self.caller()
        if caller.project is None:
            raise web.HTTPError(403, "only a workspace's own server token may append events")
        body = self.json_body()
        items = body if isinstance(body, list) else [body]
        if not items or len(items) > MAX_EVENTS:
            raise web.HTTPError(400, f"send 1 to {MAX_EVENTS} events")
        events = []
        for item in items:
            if not isinstance(item, dict) or not EVENT_TYPE.match(str(item.get("type", ""))):
                raise web.HTTPError(400, "each event needs a 'type' such as 'guard.read'")
            fields = item.get("fields") or {}
            if not isinstance(fields, dict):
                raise web.HTTPError(400, "'fields' must be an object")
            # user and project come from the token, never from the body
            events.append(NewEvent(item["type"], caller.user, caller.project, fields))
        # Appended inline: a chained append is a fraction of a millisecond and they serialise
        # on the chain's head anyway; a thread hop would cost more than it saves.
        stored = self.store.append_many(events)
        await account_outflow(self.settings["outflow_budget"], self.store, caller.user,
                              caller.project, events)  # fmt: skip
        self.set_status(201)
        self.finish({"events": [{"seq": e.seq, "hash": e.hash} for e in stored]})


class AuditHeadHandler(BaseHandler):
    """GET: the head (last seq and hash), for anchoring elsewhere. Admins only."""

    async def get(self) -> None:
        if not self.caller().admin:
            raise web.HTTPError(403, "admins only")
        head = await asyncio.to_thread(self.store.head)
        self.finish({"seq": head.seq, "hash": head.hash})


class HealthHandler(web.RequestHandler):
    """Unauthenticated. The guards poll it: while it fails they refuse guarded reads, since
    their journals would not reach the audit log."""

    def get(self) -> None:
        forwarder = self.settings.get("journal_forwarder")
        if forwarder is not None and not forwarder.healthy():
            self.set_status(503)
            self.finish({"status": "unhealthy", "reason": forwarder.error or "forwarder stalled"})
            return
        self.finish({"status": "ok"})


def make_app(
    store: AuditStore,
    prefix: str | None = None,
    outflow_budget: int | OutflowBudget = 50 * 1024**2,
    airlock: Any = None,
    hub_auth: Any = None,
    journal_forwarder: Any = None,
    directory: Any = None,
) -> web.Application:
    """``airlock``: a ``service.airlock.Airlock`` to serve its API and pages (None: audit only);
    ``hub_auth``: the authenticator (default: hub OAuth from the environment); ``directory``:
    where workspace proofs are read (default: the airlock's, else the hub's)."""
    prefix = prefix or os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/cloisonne/")
    if hub_auth is None:
        hub_auth = HubOAuth(api_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""),
                            cache_max_age=60)  # fmt: skip
    routes = [
        (r"api/health", HealthHandler),
        (r"api/audit/events", AuditEventsHandler),
        (r"api/audit/head", AuditHeadHandler),
    ]
    if airlock is not None:
        routes += AIRLOCK_ROUTES + PAGE_ROUTES
    if directory is None:
        directory = airlock.directory if airlock is not None else HubDirectory()
    return web.Application(
        [(url_path_join(prefix, path), handler) for path, handler in routes],
        hub_auth=hub_auth,
        directory=directory,
        audit_store=store,
        airlock=airlock,
        journal_forwarder=journal_forwarder,
        service_prefix=prefix,
        # one budget for both ways events arrive (HTTP appends and forwarded journals)
        outflow_budget=outflow_budget
        if isinstance(outflow_budget, OutflowBudget)
        else OutflowBudget(outflow_budget),
        cookie_secret=os.urandom(32),
    )
