"""The local backend: compile a WorkspacePlan into bubblewrap, a network namespace, nftables
rules and cgroup limits. Pure compilers (``network``, ``bwrap``) are separate from the code
that changes the host (``host``, ``cgroups``)."""
