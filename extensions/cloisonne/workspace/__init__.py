"""What runs inside a workspace (server, kernels): launcher, guard, export client, kernel hook,
egress self-test, Dask helper; imports core and the pure audit journal, never hub, service,
backends, platform or the audit store."""
