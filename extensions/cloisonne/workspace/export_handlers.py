"""The workspace server's side of "Request export…": the JupyterLab extension posts paths and a
justification here; the server (which holds the workspace's own token) snapshots the files in
the home and submits them to the airlock service. The browser never holds that token. A request
refused (here or by the airlock) is recorded by the guard with its reason.

    POST {base_url}cloisonne/exports  {"paths": [...], "why": "..."}  -> the request
    GET  {base_url}cloisonne/exports                                   -> {"requests": [...]}
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ..audit.events import GUARD_EXPORT_REFUSED
from .export import ExportError, my_exports, request_export


class ExportsHandler(APIHandler):
    @property
    def root(self) -> Path:
        return Path(self.settings["cloisonne_export_root"])

    def _fail(self, exc: ExportError) -> None:
        self.set_status(400)
        self.finish(json.dumps({"message": str(exc)}))

    @web.authenticated
    async def get(self) -> None:
        try:
            requests = await asyncio.to_thread(my_exports)
        except ExportError as exc:
            return self._fail(exc)
        self.finish(json.dumps({"requests": requests}))

    @web.authenticated
    async def post(self) -> None:
        body = self.get_json_body() or {}
        paths, why = body.get("paths"), body.get("why", "")
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise web.HTTPError(400, "'paths' must be a list of file paths")
        if not isinstance(why, str):
            raise web.HTTPError(400, "'why' must be text")
        # paths from the file browser are relative to the server's root
        relative = [p.lstrip("/") for p in paths]
        try:
            result = await asyncio.to_thread(request_export, relative, why, cwd=self.root)
        except ExportError as exc:
            # refused here (outside the home, not a file, over the cap) or by the airlock: the
            # refusal is recorded with its reason before it is answered (503 if it cannot be)
            guard = self.settings["cloisonne_guard"]
            await guard.record_refusal(GUARD_EXPORT_REFUSED, "exports", " ".join(relative),
                                       str(exc), paths=relative)  # fmt: skip
            return self._fail(exc)
        self.set_status(200 if result.get("duplicate") else 201)
        self.finish(json.dumps(result))


def install(web_app: web.Application, base_url: str, root_dir: str) -> None:
    web_app.settings["cloisonne_export_root"] = root_dir
    web_app.add_handlers(".*$", [(url_path_join(base_url, "cloisonne/exports"), ExportsHandler)])
