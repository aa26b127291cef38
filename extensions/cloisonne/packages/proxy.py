"""The package proxy's web app: a PEP 503 index per project that serves only allowed files.

Routes (``<project>`` is the project id; every request carries the workspace's credential as
HTTP basic auth, user name and token, which ``core.packages.workspace_token`` made for it):

  /<project>/simple/<name>/         the index page of ``name``: the allowed files only
  /<project>/files/<name>/<filename>    one file, decided again, hashed, audited

Where files come from: in connected mode proxpi's cache (a well-kept caching mirror of a
simple index: it fetches the upstream's pages and files and keeps them), in air-gapped mode
the site's wheelhouse. The proxy is the only one that talks to the upstream.

A refused page answers 200 with a Content-Type pip does not accept, whose parameter is the
reason: pip prints it as a warning ("Skipping page … because the GET request got
Content-Type: text/x-cloisonne-refused; reason=…") before "No matching distribution found",
and its 4xx reasons are only shown with -vv.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy
from packaging.utils import canonicalize_name
from tornado import web
from traitlets.config import Config

from ..audit.events import PACKAGE_REFUSED, PACKAGE_SERVED
from ..audit.store import AuditStore
from ..core.packages import AllowList, check_token, parse_filename, parse_list
from ..core.projects import PROJECT_ID, ProjectError, project_from_properties
from .settings import ProxySettings
from .wheelhouse import Wheelhouse, sha256_of

log = logging.getLogger("cloisonne.packages")
REFUSED_TYPE = "text/x-cloisonne-refused"


class Refused(Exception):
    def __init__(self, reason: str, package: str = "", version: str = "") -> None:
        super().__init__(reason)
        self.reason, self.package, self.version = reason, package, version


class Gate:
    """Decisions and sources, shared by the handlers (blocking methods: call in a thread)."""

    def __init__(self, settings: ProxySettings) -> None:
        self.settings = settings
        self.key = settings.key_file.read_bytes()
        self.site = parse_list(settings.allow)
        self.wheelhouse = Wheelhouse(settings.root / "wheelhouse")
        db_url = settings.db_url.replace(  # the chart's URL: the password from the hub Secret
            "${HUB_DB_PASSWORD}", quote(os.environ.get("HUB_DB_PASSWORD", ""), safe="")
        )
        self.audit = AuditStore(db_url, create=False) if db_url else None
        self.db = sqlalchemy.create_engine(db_url) if db_url else None
        self._lists: dict[str, tuple[float, AllowList]] = {}
        self._hashes: dict[str, str] = {}
        self.cache: Any = None
        if settings.mode == "connected":
            self.cache = _proxpi_cache(settings)

    # -- allow-lists ---------------------------------------------------------------------

    def allow_list(self, project: str) -> AllowList:
        """The site's list and the project's (its group's ``packages`` property), re-read
        every two seconds so that `cloisonne packages allow` takes effect at once."""
        cached = self._lists.get(project)
        if cached and time.monotonic() - cached[0] < 2:
            return cached[1]
        extra: tuple = ()
        if self.db is not None:
            with self.db.connect() as conn:
                raw = conn.execute(
                    sqlalchemy.text("SELECT properties FROM groups WHERE name = :name"),
                    {"name": project},
                ).scalar_one_or_none()
            if raw is None:
                raise Refused(f"there is no project {project}")
            properties = json.loads(raw) if isinstance(raw, str) else raw
            try:
                extra = parse_list(project_from_properties(project, properties).packages)
            except ProjectError as exc:
                raise Refused(f"the project's settings are invalid ({exc}); ask an admin") from None
        allow = AllowList(project, self.site, extra)
        self._lists[project] = (time.monotonic(), allow)
        return allow

    # -- sources -------------------------------------------------------------------------

    def files(self, name: str) -> list[dict[str, str]]:
        """Every file the source has for ``name``: filename, sha256 (may be empty),
        requires_python, yanked."""
        if self.cache is None:
            return [
                {"filename": d.filename, "sha256": sha, "requires_python": "", "yanked": ""}
                for d, sha in self.wheelhouse.files(name)
            ]
        from proxpi import NotFound

        try:
            found = self.cache.list_files(name)
        except NotFound:
            return []
        return [
            {
                "filename": f.name,
                "sha256": (f.hashes or {}).get("sha256", ""),
                "requires_python": f.requires_python or "",
                "yanked": f.yanked if isinstance(f.yanked, str) else ("yes" if f.yanked else ""),
            }
            for f in found
        ]

    def path(self, name: str, filename: str) -> Path | None:
        if self.cache is None:
            return self.wheelhouse.path(name, filename)
        from proxpi import NotFound

        try:
            got = self.cache.get_file(name, filename)
        except NotFound:
            return None
        except Exception as exc:  # noqa: BLE001 - the upstream is down
            log.warning("fetching %s failed: %r", filename, exc)
            raise Refused(
                f"the package proxy could not fetch {filename} from its upstream"
            ) from None
        if not os.path.isfile(got):  # proxpi hands back the upstream URL when it could not
            raise Refused(f"the proxy could not fetch {filename} from its upstream")
        return Path(got)

    def sha256(self, path: Path) -> str:
        key = f"{path}:{path.stat().st_mtime_ns}"
        if key not in self._hashes:
            self._hashes[key] = sha256_of(path)
        return self._hashes[key]

    # -- decisions -----------------------------------------------------------------------

    def page(self, project: str, name: str) -> list[dict[str, str]]:
        allow = self.allow_list(project)
        decision = allow.decide(name)
        if not decision.allowed:
            raise Refused(decision.reason, name)
        try:
            files = self.files(name)
        except Exception as exc:  # noqa: BLE001 - the upstream is down or answers nonsense
            log.warning("listing %s failed: %r", name, exc)
            raise Refused(
                f"the package proxy cannot get {canonicalize_name(name)} from its source now "
                "(try again later; if it lasts, tell an admin)",
                name,
            ) from None
        kept, dropped = [], set()
        for entry in files:
            dist = parse_filename(entry["filename"])
            if dist is None or dist.name != canonicalize_name(name):
                continue
            if dist.kind == "sdist" and not self.settings.allow_sdists:
                dropped.add("sdists (only wheels are served)")
                continue
            if not allow.decide(name, dist.version).allowed:
                dropped.add("versions outside the allowed range")
                continue
            kept.append(entry)
        if not kept:
            why = " and ".join(sorted(dropped)) if dropped else "nothing on this site's source"
            raise Refused(
                f"{canonicalize_name(name)} is allowed in project {project} but no file of it "
                f"can be served ({why})",
                name,
            )
        return kept

    def file(self, project: str, name: str, filename: str) -> tuple[Path, str, str]:
        dist = parse_filename(filename)
        if dist is None or dist.name != canonicalize_name(name):
            raise Refused(f"{filename} is not a file of {name}", name)
        if dist.kind == "sdist" and not self.settings.allow_sdists:
            raise Refused("only wheels are served on this site (sdists run code at install)",
                          name, dist.version)  # fmt: skip
        decision = self.allow_list(project).decide(name, dist.version)
        if not decision.allowed:
            raise Refused(decision.reason, name, dist.version)
        path = self.path(name, filename)
        if path is None:
            raise Refused(f"{filename} is not on this site", name, dist.version)
        return path, dist.version, self.sha256(path)

    def record(self, kind: str, user: str, project: str, fields: dict[str, Any]) -> None:
        log.info("%s %s %s %s", kind, user, project, fields)
        if self.audit is not None:
            self.audit.append(kind, user=user, project=project, fields=fields)


def _proxpi_cache(settings: ProxySettings) -> Any:
    """proxpi's index and file cache, configured the way proxpi reads its settings."""
    os.environ.update(
        PROXPI_INDEX_URL=settings.upstream,
        PROXPI_INDEX_TTL=str(settings.cache_ttl),
        PROXPI_CACHE_DIR=str(settings.root / "cache"),
        PROXPI_DOWNLOAD_TIMEOUT="600",  # wait for the file: never send pip to the upstream
        PROXPI_CONNECT_TIMEOUT="5",
        PROXPI_READ_TIMEOUT="60",
    )
    from proxpi import Cache

    return Cache.from_config()


class Handler(web.RequestHandler):
    def set_default_headers(self) -> None:
        # decisions change when a list does: pip must ask again, never reuse a cached answer
        self.set_header("Cache-Control", "no-store")

    @property
    def gate(self) -> Gate:
        return self.settings["gate"]

    def who(self, project: str) -> str:
        """The user whose workspace sent this request (401 without a valid credential)."""
        header = self.request.headers.get("Authorization", "")
        user = token = ""
        if header.startswith("Basic "):
            try:
                user, _, token = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                pass
        if not (PROJECT_ID.match(project) and user and check_token(self.gate.key, project, user,
                                                                     token)):  # fmt: skip
            self.set_header("WWW-Authenticate", 'Basic realm="cloisonne packages"')
            raise web.HTTPError(401, reason="a workspace credential of this project is needed")
        return user

    def refuse(self, user: str, project: str, exc: Refused) -> None:
        self.gate.record(
            PACKAGE_REFUSED, user, project,
            {"package": exc.package, "version": exc.version, "reason": exc.reason},
        )  # fmt: skip
        safe = exc.reason.replace('"', "'").encode("ascii", "replace").decode()
        self.set_header("Content-Type", f'{REFUSED_TYPE}; reason="{safe}"')
        self.finish(exc.reason + "\n")


class PageHandler(Handler):
    async def get(self, project: str, name: str) -> None:
        user = self.who(project)
        try:
            files = await asyncio.to_thread(self.gate.page, project, name)
        except Refused as exc:
            return self.refuse(user, project, exc)
        canonical = canonicalize_name(name)
        links = []
        for f in files:
            href = f"../../files/{canonical}/{f['filename']}"
            if f["sha256"]:
                href += f"#sha256={f['sha256']}"
            attrs = ""
            if f["requires_python"]:
                attrs += f' data-requires-python="{html.escape(f["requires_python"])}"'
            if f["yanked"]:
                attrs += f' data-yanked="{html.escape(f["yanked"])}"'
            links.append(f'<a href="{html.escape(href)}"{attrs}>{html.escape(f["filename"])}</a>')
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            '<!DOCTYPE html><html><head><meta name="pypi:repository-version" content="1.0">'
            f"<title>Links for {canonical}</title></head><body><h1>Links for {canonical}</h1>"
            + "<br>".join(links)
            + "</body></html>"
        )


class FileHandler(Handler):
    async def get(self, project: str, name: str, filename: str) -> None:
        user = self.who(project)
        try:
            path, version, sha = await asyncio.to_thread(self.gate.file, project, name, filename)
        except Refused as exc:
            self.set_status(403, reason="refused by the package allow-list")
            return self.refuse(user, project, exc)
        source = "upstream" if self.gate.cache is not None else "wheelhouse"
        await asyncio.to_thread(
            self.gate.record, PACKAGE_SERVED, user, project,
            {"package": canonicalize_name(name), "version": version, "file": filename,
             "sha256": sha, "source": source},
        )  # fmt: skip
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(path.stat().st_size))
        with path.open("rb") as f:
            while chunk := f.read(1 << 18):
                self.write(chunk)
                await self.flush()
        self.finish()


class RootHandler(Handler):
    async def get(self, project: str) -> None:
        self.who(project)
        allow = await asyncio.to_thread(self.gate.allow_list, project)
        names = sorted({e.name for e in (*allow.site, *allow.extra)})
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish("<!DOCTYPE html><html><body>" + "".join(
            f'<a href="{n}/">{n}</a><br>' for n in names) + "</body></html>")  # fmt: skip


def make_app(gate: Gate) -> web.Application:
    name = r"([A-Za-z0-9][A-Za-z0-9._-]*)"
    return web.Application(
        [
            (r"/([a-z0-9-]+)/simple/?", RootHandler),
            (rf"/([a-z0-9-]+)/simple/{name}/?", PageHandler),
            (rf"/([a-z0-9-]+)/files/{name}/([^/]+)", FileHandler),
        ],
        gate=gate,
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m cloisonne.packages <settings.json>`` (written by PackageProxy.start)."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = Config(json.loads(Path(argv[0]).read_text()))
    settings = ProxySettings(config=config)
    gate = Gate(settings)

    async def serve() -> None:
        make_app(gate).listen(settings.port, settings.host, xheaders=False)
        log.info("package proxy (%s) on %s:%s", settings.mode, settings.host, settings.port)
        await asyncio.Event().wait()

    asyncio.run(serve())
