"""The cloisonne hub service: the audit log's API (and the export airlock's, later).

It runs as a JupyterHub managed service outside every workspace, authenticates callers with
hub tokens, and writes to the audit store in the hub's database.
"""
