# Cloisonné hub configuration: one file for every backend. The settings are environment
# variables (see `cloisonne settings` or docs/configuration.md); this file stays declarative.
from cloisonne.core.projects import ProjectError
from cloisonne.hub.config import configure
from cloisonne.hub.site import SiteError

try:
    configure(c)  # noqa: F821  (c is provided by JupyterHub)
except (ProjectError, SiteError) as exc:
    # A clean one-line refusal rather than a traceback from inside traitlets.
    raise SystemExit(f"Cloisonné: refusing to start: {exc}") from None
