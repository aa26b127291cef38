"""The JupyterHub process: its configuration, OIDC authenticator, group sync and hub audit events;
imports core, audit, data and backends, never platform (operator tooling)."""
