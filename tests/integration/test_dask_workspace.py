"""cloisonne.workspace.dask on the local backend, for real: a LocalCluster inside a sandboxed workspace
(loopback inside the workspace's own network namespace; nothing reachable from outside)."""

from __future__ import annotations

from cloisonne.platform.localhub import LocalHub

from .workspace import spawn, stop


def test_dask_cluster_runs_inside_the_workspace(platform: LocalHub) -> None:
    ws = spawn(platform, "bob", "cardio")
    try:
        out = ws.run_json(
            """
            import json
            from distributed import Client, LocalCluster
            from cloisonne.workspace import dask as cdask
            with cdask.cluster(n_workers=1, threads_per_worker=1, memory_limit='200MB') as cluster:
                with Client(cluster) as client:
                    total = client.submit(sum, range(101)).result(timeout=60)
                print(json.dumps({'local': isinstance(cluster, LocalCluster),
                                  'address': cluster.scheduler_address, 'total': total}))
            """,
            timeout=120,
        )
    finally:
        stop(platform, "bob", "cardio")
    assert out["local"] and out["total"] == 5050
    assert out["address"].startswith("tcp://127.0.0.1:")
