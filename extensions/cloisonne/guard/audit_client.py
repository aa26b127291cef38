"""The guard's link to the audit log: every decision is appended before anything is served.

If the cloisonne service cannot be reached the guard answers 503: nothing is served
unaudited.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

UNAVAILABLE = (
    "The audit service cannot be reached, so this request cannot be recorded and is refused. "
    "Try again in a moment; if it persists, tell your administrator."
)


class AuditUnavailable(web.HTTPError):
    def __init__(self, detail: str):
        super().__init__(503, log_message=UNAVAILABLE)
        self.detail = detail


class AuditClient:
    def __init__(self, service_url: str | None = None, token: str | None = None,
                 timeout: float = 10.0):  # fmt: skip
        self.url = (service_url or os.environ.get("CLOISONNE_SERVICE_URL", "")) + "api/audit/events"
        self.token = token or os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.timeout = timeout

    async def append(self, event_type: str, **fields: Any) -> dict:
        """Append one event and wait for the service to confirm it; raise AuditUnavailable."""
        return (await self.append_many([(event_type, fields)]))[0]

    async def append_many(self, events: list[tuple[str, dict[str, Any]]]) -> list[dict]:
        body = json.dumps([{"type": t, "fields": f} for t, f in events])
        request = HTTPRequest(
            self.url, method="POST", body=body, request_timeout=self.timeout,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            response = await AsyncHTTPClient().fetch(request)
        except (HTTPClientError, OSError) as exc:
            raise AuditUnavailable(str(exc)) from None
        return json.loads(response.body)["events"]
