# JupyterHub configuration for the Kubernetes distribution (rendered into the hub ConfigMap).
# All settings come from cloisonne.yaml, rendered from the chart's values; this file only
# hands them to cloisonne.hub.kube, which is unit-tested.
import os

from cloisonne.core.projects import ProjectError
from cloisonne.hub.kube import configure
from cloisonne.hub.site import SiteError

try:
    configure(c, os.environ["CLOISONNE_SITE_CONFIG"], os.environ)  # noqa: F821
except (ProjectError, SiteError) as exc:
    raise SystemExit(f"Cloisonné: refusing to start: {exc}") from None
