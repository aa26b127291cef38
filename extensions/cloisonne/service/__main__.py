"""Run the service: ``python -m cloisonne.service`` (started by the hub as a managed service)."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from urllib.parse import urlparse

from ..audit.store import AuditStore
from ..core.projects import parse_size
from .airlock import Airlock
from .app import make_app
from .directory import HubDirectory
from .journal_forwarder import JournalForwarder
from .outflow import OutflowBudget
from .settings import AirlockSettings


async def serve() -> None:
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    store = AuditStore(os.environ["CLOISONNE_AUDIT_DB"])
    budget = parse_size(os.environ.get("CLOISONNE_OUTFLOW_BUDGET", "50M"), field="budget")
    settings = AirlockSettings.from_env()
    airlock = Airlock(store, HubDirectory(cache_s=settings.directory_cache_s), settings)
    await airlock.recover()
    outflow = OutflowBudget(budget)
    forwarder = None
    journal_dir = os.environ.get("CLOISONNE_AUDIT_JOURNAL_DIR")
    if journal_dir:
        forwarder = JournalForwarder(store, Path(journal_dir), outflow)
        forwarder_task = asyncio.create_task(forwarder.run())  # noqa: F841 - runs for ever
    app = make_app(store, outflow_budget=outflow, airlock=airlock, journal_forwarder=forwarder)
    # base64 in JSON: 4/3 of the files' bytes, plus the envelope
    max_body = settings.max_request_bytes * 4 // 3 + 1024**2
    app.listen(url.port or 80, address=url.hostname or "127.0.0.1", xheaders=True,
               max_body_size=max_body)  # fmt: skip
    logging.getLogger("cloisonne.service").info("listening on %s", url.geturl())
    await asyncio.Event().wait()


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="[%(levelname)s %(asctime)s %(name)s] %(message)s"
    )
    asyncio.run(serve())


if __name__ == "__main__":
    main()
