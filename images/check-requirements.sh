#!/usr/bin/env bash
# Check the images' pinned requirements without building images (no Docker engine in CI).
#
#   hub, singleuser   install the pins in a fresh venv, install the cloisonne package, import
#                     everything the image promises and run a small smoke test. torch==2.13.0
#                     resolves to the CPU build (a local wheel on the CI machine; the
#                     Dockerfile uses PyTorch's CPU index).
#   singleuser-gpu    CUDA torch and RAPIDS cannot be installed or imported without NVIDIA GPUs.
#                     Checked instead: (1) the GPU pins resolve together with the CPU image's
#                     pins (pip --dry-run, full dependency resolution); (2) the CUDA builds of
#                     the pins exist on PyPI for CPython 3.11 / manylinux x86_64 (pip --dry-run
#                     --no-deps against PyPI only, ignoring local wheels).
#
# Usage: bash images/check-requirements.sh [hub|singleuser|singleuser-gpu ...]   (default: all)
# Takes about 3-4 minutes with a warm pip cache; needs only PyPI.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cloisonne-images.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
IMAGES=("$@")
[ ${#IMAGES[@]} -gt 0 ] || IMAGES=(hub singleuser singleuser-gpu)

say() { printf '\n== %s\n' "$*"; }

pip_install() {  # pip_install VENV ARGS...: pip install, quiet unless it fails
  local env="$1" log="$WORK/pip.log"; shift
  if ! "$env/bin/pip" install --quiet --disable-pip-version-check "$@" >"$log" 2>&1; then
    grep -v '^WARNING: Location' "$log" >&2
    return 1
  fi
}

venv() {  # venv NAME -> path of a fresh venv with a recent pip (PEP 658 metadata: no big downloads)
  "$PYTHON" -m venv "$WORK/$1"
  pip_install "$WORK/$1" 'pip>=25'
  echo "$WORK/$1"
}

check_hub() {
  say "hub: install and import"
  local env; env="$(venv hub)"
  pip_install "$env" -r "$ROOT/images/hub/requirements.txt"
  pip_install "$env" --no-deps "$ROOT"
  "$env/bin/python" - <<'PY'
import jupyterhub, kubespawner, oauthenticator.generic, psycopg, yaml
from cloisonne.backends.kube.spawner import ProjectKubeSpawner
from cloisonne.hub.kube import configure  # what the chart's jupyterhub_config.py runs
from cloisonne.packages.proxy import make_app  # the package proxy's Deployment runs this image
print("hub ok: jupyterhub", jupyterhub.__version__, "kubespawner", kubespawner.__version__)
PY
}

check_singleuser() {
  say "singleuser: install and import"
  local env; env="$(venv singleuser)"
  pip_install "$env" -r "$ROOT/images/singleuser/requirements.txt"
  pip_install "$env" --no-deps "$ROOT"
  "$env/bin/python" - <<'PY'
import dask, distributed, dask_kubernetes.operator, duckdb, jupyterlab, numpy as np, pandas as pd
import polars as pl, pyarrow, s3fs, sklearn, torch
import jupyterhub.singleuser  # noqa: F401  (the server the spawner starts)
from sklearn.linear_model import LogisticRegression
from cloisonne.workspace.dask import cluster  # noqa: F401

frame = pl.DataFrame({"age": [34, 51, 67, 72], "event": [0, 0, 1, 1]})
assert duckdb.sql("select sum(event) as n from frame").fetchall() == [(2,)]
model = LogisticRegression().fit(frame.select("age").to_numpy(), frame["event"].to_numpy())
assert model.predict(np.array([[80]]))[0] == 1
assert float(torch.ones(3).sum()) == 3.0
print("singleuser ok: torch", torch.__version__, "cuda:", torch.version.cuda,
      "| dask", dask.__version__, "| pandas", pd.__version__, "| polars", pl.__version__)
PY
}

check_singleuser_gpu() {
  say "singleuser-gpu: pins resolve with the CPU image's (no install: needs NVIDIA GPUs)"
  local env; env="$(venv gpu)"
  pip_install "$env" --dry-run --ignore-installed --report "$WORK/gpu-report.json" \
    -r "$ROOT/images/singleuser/requirements.txt" -r "$ROOT/images/singleuser-gpu/requirements.txt"
  "$env/bin/python" - "$WORK/gpu-report.json" <<'PY'
import json, sys
names = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in json.load(open(sys.argv[1]))["install"]}
for name in ("cudf-cu13", "pylibcudf-cu13", "rmm-cu13", "torch", "pandas", "numpy"):
    assert name in names, f"{name} missing from the resolution"
print("resolved:", ", ".join(f"{n}=={names[n]}" for n in ("cudf-cu13", "torch", "pandas", "numpy")))
PY
  say "singleuser-gpu: CUDA builds of the pins exist on PyPI (cp311, manylinux x86_64)"
  while read -r pin; do
    "$env/bin/pip" install --isolated --quiet --dry-run --no-deps --ignore-installed \
      --index-url https://pypi.org/simple --report "$WORK/pin.json" "$pin"
    "$env/bin/python" - "$WORK/pin.json" "$pin" <<'PY'
import json, sys
(item,) = json.load(open(sys.argv[1]))["install"]
url, requires = item["download_info"]["url"], item["metadata"].get("requires_dist") or []
cuda = [r for r in requires if "cu13" in r or "cuda" in r]
assert "manylinux" in url and cuda, f"{sys.argv[2]}: not a CUDA build ({url})"
print(f"{sys.argv[2]}: {url.rsplit('/', 1)[-1]} needs {cuda[0].split(';')[0]}")
PY
  done < <(grep -E '^[A-Za-z0-9_.-]+==' "$ROOT/images/singleuser-gpu/requirements.txt")
}

for image in "${IMAGES[@]}"; do
  case "$image" in
    hub) check_hub ;;
    singleuser) check_singleuser ;;
    singleuser-gpu) check_singleuser_gpu ;;
    *) echo "unknown image: $image" >&2; exit 2 ;;
  esac
done
say "all image requirement checks passed: ${IMAGES[*]}"
