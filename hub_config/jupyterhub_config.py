# Cloisonné hub configuration: one file for every backend. The settings are environment
# variables (see `cloisonne settings` or cloisonne/hub/config.py); this file stays declarative.
from cloisonne.hub.config import configure

configure(c)  # noqa: F821  (c is provided by JupyterHub)
