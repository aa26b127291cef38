"""The local backend, in the JupyterHub process as root (imports core, audit's journal, data,
workspace's server arguments): compile a WorkspacePlan into bubblewrap, a network namespace,
nftables rules and cgroup limits. Pure compilers (``network``, ``bwrap``) are separate from the
code that changes the host (``host``, ``cgroups``)."""
