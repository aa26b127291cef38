"""The cloisonne hub service, its own process: audit API, export airlock; imports core, airlock,
sdc, audit (the store too), never hub, workspace or platform.

It runs as a JupyterHub managed service outside every workspace, authenticates callers with
hub tokens, and writes to the audit store in the hub's database.
"""
