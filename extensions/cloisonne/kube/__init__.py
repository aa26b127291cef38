"""Kubernetes backend: the pod compiler (pure) and ProjectKubeSpawner (needs the `kube` extra)."""
