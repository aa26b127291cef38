"""Run the service: ``python -m cloisonne.service`` (started by the hub as a managed service)."""

from __future__ import annotations

import asyncio
import logging
import os
from urllib.parse import urlparse

from ..audit.store import AuditStore
from ..projects import parse_size
from .app import make_app


async def serve() -> None:
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    store = AuditStore(os.environ["CLOISONNE_AUDIT_DB"])
    budget = parse_size(os.environ.get("CLOISONNE_OUTFLOW_BUDGET", "50M"), field="budget")
    app = make_app(store, outflow_budget=budget)
    app.listen(url.port or 80, address=url.hostname or "127.0.0.1", xheaders=True)
    logging.getLogger("cloisonne.service").info("listening on %s", url.geturl())
    await asyncio.Event().wait()


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="[%(levelname)s %(asctime)s %(name)s] %(message)s"
    )
    asyncio.run(serve())


if __name__ == "__main__":
    main()
