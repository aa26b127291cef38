"""Static checks of images/ (the images cannot be built here; images/check-requirements.sh
installs and imports the pins in venvs)."""

from __future__ import annotations

import re

import pytest

from .conftest import ROOT

IMAGES = ROOT / "images"
PIN = re.compile(r"^[A-Za-z0-9_.-]+(\[[a-z,]+\])?==[0-9][A-Za-z0-9.+-]*$")


def requirements(image: str) -> dict[str, str]:
    pins = {}
    for line in (IMAGES / image / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert PIN.match(line), f"{image}: not pinned with ==: {line!r}"
            name, version = line.split("==")
            pins[name.split("[")[0].lower()] = version
    return pins


@pytest.mark.parametrize("image", ["hub", "singleuser", "singleuser-gpu"])
def test_requirements_are_pinned_and_installed_by_the_dockerfile(image: str) -> None:
    assert requirements(image)
    dockerfile = (IMAGES / image / "Dockerfile").read_text()
    assert f"COPY images/{image}/requirements.txt" in dockerfile
    assert "-r /tmp/requirements.txt" in dockerfile


def test_singleuser_promises() -> None:
    pins = requirements("singleuser")
    for name in (
        "jupyterlab", "jupyterhub", "dask", "distributed", "dask-kubernetes", "scikit-learn",
        "torch", "s3fs", "duckdb", "polars",
    ):  # fmt: skip
        assert name in pins, name
    # Never: they bypass the workspace guard (ARCHITECTURE.md).
    assert not {"jupyter-server-proxy", "jupyter-archive"} & set(pins)


def test_images_follow_docker_stacks_conventions() -> None:
    cpu = (IMAGES / "singleuser" / "Dockerfile").read_text()
    assert re.search(r"BASE_IMAGE=quay\.io/jupyter/\S+", cpu)
    assert "USER ${NB_UID}" in cpu and "/home/jovyan" in cpu
    assert "/opt/cloisonne/jupyter" in cpu  # where the spawner pins JUPYTER_CONFIG_DIR
    gpu = (IMAGES / "singleuser-gpu" / "Dockerfile").read_text()
    assert "USER ${NB_UID}" in gpu
    assert "uid 1000" in (IMAGES / "hub" / "Dockerfile").read_text()


def test_gpu_image_shares_torch_and_pandas_with_cpu_image() -> None:
    cpu, gpu = requirements("singleuser"), requirements("singleuser-gpu")
    assert gpu["torch"] == cpu["torch"]
    # One CUDA major: PyPI's torch 2.13.0 is built for CUDA 13.
    assert [n for n in gpu if n.startswith("cudf-")] == ["cudf-cu13"]
    # cuDF 26.10 requires pandas >=3.0,<3.1.
    assert cpu["pandas"].startswith("3.0.")
