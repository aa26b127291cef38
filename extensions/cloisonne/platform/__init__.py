"""Operator tooling, run by the operator (mostly as root) outside the hub: the CLI, LocalHub, the
embedded OIDC provider, PostgreSQL and the local data services; may import every room."""
