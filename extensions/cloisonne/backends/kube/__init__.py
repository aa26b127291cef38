"""Kubernetes backend, in the JupyterHub process (imports core, data, workspace's server
arguments): the pod compiler (pure) and ProjectKubeSpawner (needs the `kube` extra)."""
