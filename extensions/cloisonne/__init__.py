"""Cloisonné: a trusted research environment for health data, as a JupyterHub distribution."""
