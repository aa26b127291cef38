"""The package proxy: runs as its own process on the host (root; a Deployment on Kubernetes).

Imports pure cores (core, audit) and the audit store; nothing from the hub, spawners or the
workspace. See docs/packages.md.
"""
