"""Who leads what and what each project requires, read from the hub with the service's token.

Projects are hub groups whose properties hold the project's settings; ``<id>-leads`` groups
name the leads. Answers are cached for a few seconds.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Protocol
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from ..airlock.model import Actor
from ..core.projects import (
    LEADS_SUFFIX,
    Project,
    ProjectError,
    is_project_group,
    project_from_properties,
)
from ..core.workspace_proof import WorkspaceProof


class Directory(Protocol):
    async def actor(self, name: str) -> Actor: ...

    async def project(self, project_id: str) -> Project | None: ...

    async def workspace_proof(self, user: str, server: str, fresh: bool = False
                              ) -> WorkspaceProof | None: ...  # fmt: skip


class StaticDirectory:
    """Fixed answers (tests and benchmarks)."""

    def __init__(self, projects: dict[str, Project], leads: dict[str, set[str]],
                 proofs: dict[str, WorkspaceProof] | None = None) -> None:  # fmt: skip
        self.projects = projects
        self.leads = leads  # user -> projects led
        self.proofs = proofs or {}  # "user/project" -> the running workspace's proof

    async def actor(self, name: str) -> Actor:
        return Actor(name, frozenset(self.leads.get(name, set())))

    async def project(self, project_id: str) -> Project | None:
        return self.projects.get(project_id)

    async def workspace_proof(self, user: str, server: str, fresh: bool = False
                              ) -> WorkspaceProof | None:  # fmt: skip
        return self.proofs.get(f"{user}/{server}")


class HubDirectory:
    def __init__(self, api_url: str | None = None, token: str | None = None,
                 cache_s: float = 10) -> None:  # fmt: skip
        self.api_url = (api_url or os.environ["JUPYTERHUB_API_URL"]).rstrip("/")
        self.token = token or os.environ["JUPYTERHUB_API_TOKEN"]
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, Any]] = {}

    async def _get(self, path: str, fresh: bool = False) -> Any:
        hit = self._cache.get(path)
        if hit and not fresh and time.monotonic() - hit[0] < self.cache_s:
            return hit[1]
        try:
            response = await AsyncHTTPClient().fetch(
                self.api_url + path, headers={"Authorization": f"token {self.token}"},
                request_timeout=10,
            )  # fmt: skip
            value = json.loads(response.body)
        except HTTPClientError as exc:
            if exc.code != 404:
                raise
            value = None
        self._cache[path] = (time.monotonic(), value)
        return value

    async def actor(self, name: str) -> Actor:
        model = await self._get(f"/users/{quote(name, safe='')}") or {}
        groups = model.get("groups") or []
        led = {g[: -len(LEADS_SUFFIX)] for g in groups if g.endswith(LEADS_SUFFIX)}
        return Actor(name, frozenset(led))

    async def project(self, project_id: str) -> Project | None:
        if project_id.endswith(LEADS_SUFFIX):
            return None
        model = await self._get(f"/groups/{quote(project_id, safe='')}")
        props = (model or {}).get("properties") or {}
        if not is_project_group(project_id, props):
            return None
        try:
            return project_from_properties(project_id, props)
        except ProjectError:
            return None

    async def workspace_proof(self, user: str, server: str, fresh: bool = False
                              ) -> WorkspaceProof | None:  # fmt: skip
        """The proof the spawner left in the running server's state (read with the service's
        ``admin:server_state`` scope); ``fresh`` skips the cache (a new start has a new one)."""
        model = await self._get(f"/users/{quote(user, safe='')}", fresh=fresh) or {}
        found = (model.get("servers") or {}).get(server) or {}
        return WorkspaceProof.from_state(found.get("state"))
