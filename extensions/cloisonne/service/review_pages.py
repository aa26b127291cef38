"""The airlock's web pages (server-rendered, hub OAuth login): requests to review and one's
own, one request with its files, SHA-256, check report and the forms its viewer may use.

The pages show only what ``view_for`` gives the viewer (blinding included) and act through the
same ``Airlock`` methods as the API, so the rules are the same whichever way one comes in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyterhub.services.auth import HubOAuthCallbackHandler
from tornado import web

from ..airlock.errors import AirlockError
from ..airlock.model import Action, Decision, FileVote
from .airlock_api import AirlockHandler

TEMPLATES = Path(__file__).with_name("templates")


class PageHandler(AirlockHandler):
    def get_template_path(self) -> str:
        return str(TEMPLATES)

    def page(self, name: str, **kw: Any) -> None:
        self.render(name, base=self.settings["service_prefix"], user=self.current_user["name"],
                    error=kw.pop("error", ""), **kw)  # fmt: skip

    def _handle_request_exception(self, e: BaseException) -> None:
        web.RequestHandler._handle_request_exception(self, e)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = str(exc) if isinstance(exc, AirlockError) else self._reason
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(f"<!doctype html><title>{status_code}</title><p>{status_code}: "
                    f"{web.escape.xhtml_escape(message)}</p>")  # fmt: skip


class ListPage(PageHandler):
    @web.authenticated
    async def get(self) -> None:
        _, actor = await self.actor()
        rows = self.airlock.list(actor)
        to_review = [r for r in rows if r["requester"] != actor.name]
        mine = [r for r in rows if r["requester"] == actor.name]
        sections = [("To review (projects you lead)", to_review), ("Your requests", mine)]
        self.page("list.html", title="Export requests", sections=sections)


class RequestPage(PageHandler):
    async def show(self, request_id: str, error: str = "") -> None:
        caller, actor = await self.actor()
        r = self.airlock.get(request_id, actor)
        is_requester = r["requester"] == actor.name
        can_download = caller.project is None and (r["state"] == "released" or not is_requester)
        self.page("request.html", title=f"Request {request_id}", r=r, error=error,
                  is_requester=is_requester, can_download=can_download)  # fmt: skip

    @web.authenticated
    async def get(self, request_id: str, action: str = "") -> None:
        try:
            await self.show(request_id)
        except AirlockError as exc:
            raise web.HTTPError(404, str(exc)) from None

    @web.authenticated
    async def post(self, request_id: str, action: str) -> None:
        caller, actor = await self.actor()
        comment = self.get_body_argument("comment", "")
        try:
            self.outside_workspace(caller, "acting on a request")
            if action == "review":
                votes = {}
                for key, values in self.request.body_arguments.items():
                    if key.startswith("decision:"):
                        name = key.partition(":")[2]
                        decision = Decision(values[0].decode())
                        note = self.get_body_argument(f"comment:{name}", "")
                        votes[name] = FileVote(decision, note)
                await self.airlock.act(request_id, Action.REVIEW, actor, comment, votes=votes)
            else:
                await self.airlock.act(request_id, Action(action), actor, comment)
        except (AirlockError, ValueError) as exc:
            self.set_status(400)
            await self.show(request_id, error=str(exc))
            return
        self.redirect(f"{self.settings['service_prefix']}airlock/requests/{request_id}")


class OAuthCallback(HubOAuthCallbackHandler):
    def initialize(self) -> None:
        # the instance that started the login holds its PKCE verifier
        self.hub_auth = self.settings["hub_auth"]


class Home(web.RequestHandler):
    def get(self) -> None:
        self.redirect(self.settings["service_prefix"] + "airlock/")


ROUTES: list[tuple[str, type[web.RequestHandler]]] = [
    (r"", Home),
    (r"oauth_callback", OAuthCallback),
    (r"airlock/?", ListPage),
    (r"airlock/requests/([^/]+)", RequestPage),
    (r"airlock/requests/([^/]+)/([a-z_]+)", RequestPage),
]
