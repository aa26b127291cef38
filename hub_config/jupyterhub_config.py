# Cloisonné hub configuration: one file for every backend. The settings are environment
# variables (see `cloisonne settings` or cloisonne/hubconfig.py); this file stays declarative.
from cloisonne.hubconfig import configure

configure(c)  # noqa: F821  (c is provided by JupyterHub)
