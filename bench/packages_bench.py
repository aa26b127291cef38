"""Package proxy: `pip install` of 10 allowed wheels through the warm proxy against the same
install from a local folder (`--no-index --find-links`), same run.

    .venv/bin/python bench/packages_bench.py [--rounds 5]

Ten pure-Python wheels of 256 KiB each (made here, no network) are loaded into the proxy's
wheelhouse (air-gapped mode) and served by a local static index (the upstream of the
connected-mode proxy, whose cache is warmed first). Each figure is the median wall time of
``--rounds`` installs into a fresh target folder, pip's cache off for both sides; the proxy
checks the allow-list, hashes and audits every file. Target: ratio ≤ 1.5 (issue 15).
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cloisonne.core.packages import index_url, workspace_token  # noqa: E402
from cloisonne.packages.process import PackageProxy  # noqa: E402
from cloisonne.packages.settings import ProxySettings  # noqa: E402
from cloisonne.packages.wheelhouse import Wheelhouse  # noqa: E402

from tests.packages.conftest import free_port, hub_database, pip_env  # noqa: E402
from tests.packages.wheels import make_wheel, write_simple_index  # noqa: E402

TITLE = "Package proxy: pip install of 10 wheels (issue 15)"
NAMES = [f"benchpkg{i}" for i in range(10)]
TARGET_RATIO = 1.5


def _wheels(folder: Path) -> list[Path]:
    paths = []
    for name in NAMES:
        path = make_wheel(folder, name, "1.0")
        # 256 KiB of incompressible payload, so the files are not all headers
        import zipfile

        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr(f"{name}/payload.bin", os.urandom(256 * 1024))
        paths.append(path)
    return paths


def _install(tmp: Path, *args: str) -> float:
    target = Path(tempfile.mkdtemp(dir=tmp))
    start = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-deps", "--target",
         str(target), *args, *NAMES],
        capture_output=True, text=True, env=pip_env(), timeout=300,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise RuntimeError(r.stdout + r.stderr)
    return elapsed


def _proxy(tmp: Path, db_url: str, **traits: Any) -> tuple[PackageProxy, str]:
    settings = ProxySettings(host="127.0.0.1", port=free_port(), db_url=db_url,
                             state_dir=str(tmp), allow=NAMES, **traits)  # fmt: skip
    proxy = PackageProxy(settings)
    proxy.start()
    key = settings.key_file.read_bytes()
    url = index_url("127.0.0.1", settings.port, "bench", "alice",
                    workspace_token(key, "bench", "alice"))  # fmt: skip
    return proxy, url


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


def row(name: str, value: float, baseline: str, baseline_value: float) -> dict[str, Any]:
    ratio = round(value / baseline_value, 3)
    return {"name": name, "value": round(value, 3), "unit": "s", "baseline": baseline,
            "baseline_value": round(baseline_value, 3), "ratio": ratio,
            "target": f"ratio <= {TARGET_RATIO}", "met": ratio <= TARGET_RATIO}  # fmt: skip


def measure(rounds: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        files = _wheels(tmp / "wheels")
        db_url = hub_database(tmp / "hub.sqlite", {"bench": {}})
        house = Wheelhouse(tmp / "air" / "wheelhouse")
        for name in NAMES:
            house.add(name, tmp / "wheels")
        root = write_simple_index(files, tmp / "upstream")
        handler = partial(QuietHandler, directory=str(root))
        upstream = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        threading.Thread(target=upstream.serve_forever, daemon=True).start()
        air, air_url = _proxy(tmp / "air", db_url)
        connected, connected_url = _proxy(
            tmp / "connected", db_url, mode="connected",
            upstream=f"http://127.0.0.1:{upstream.server_address[1]}/",
        )  # fmt: skip
        try:
            for url in (air_url, connected_url):  # warm: caches, hashes, pip's imports
                _install(tmp, "--index-url", url)
            local, via_air, via_connected = [], [], []
            for _ in range(rounds):  # interleaved, so drift hits all three alike
                local.append(_install(tmp, "--no-index", "--find-links", str(tmp / "wheels")))
                via_air.append(_install(tmp, "--index-url", air_url))
                via_connected.append(_install(tmp, "--index-url", connected_url))
        finally:
            air.stop()
            connected.stop()
            upstream.shutdown()
            upstream.server_close()
    base = statistics.median(local)
    label = "pip install --no-index --find-links <local folder>"
    return [
        row(
            "pip install, 10 wheels, air-gapped proxy (wheelhouse)",
            statistics.median(via_air),
            label,
            base,
        ),  # fmt: skip
        row(
            "pip install, 10 wheels, connected proxy (warm cache)",
            statistics.median(via_connected),
            label,
            base,
        ),  # fmt: skip
    ]


def run() -> list[dict[str, Any]]:
    return measure(5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    rows = measure(args.rounds)
    print(json.dumps(rows, indent=1))
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
