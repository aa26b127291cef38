# JupyterHub configuration for the Kubernetes distribution (rendered into the hub ConfigMap).
# All settings come from cloisonne.yaml, rendered from the chart's values; this file only
# hands them to cloisonne.hub.kube, which is unit-tested.
import os

from cloisonne.hub.kube import configure

configure(c, os.environ["CLOISONNE_SITE_CONFIG"], os.environ)  # noqa: F821
