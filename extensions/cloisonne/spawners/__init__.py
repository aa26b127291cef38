"""JupyterHub spawners: one per backend, both compiling the same WorkspacePlan."""
