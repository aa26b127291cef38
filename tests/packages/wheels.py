"""Tiny real wheels made on the spot, so package tests and benchmarks need no network.

Each wheel is a valid pure-Python wheel (METADATA, WHEEL, RECORD with hashes) holding one
module whose ``VALUE`` says which release it is.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Iterable
from pathlib import Path


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(folder: Path, name: str, version: str, requires: Iterable[str] = ()) -> Path:
    """``<name>-<version>-py3-none-any.whl`` in ``folder``; module ``name`` (with '-' as '_')."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{module}/__init__.py": f"VALUE = {f'{name} {version}'!r}\n".encode(),
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: cloisonne-tests\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    record += f"{dist_info}/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name_in_zip, data in files.items():
            zf.writestr(name_in_zip, data)
        zf.writestr(f"{dist_info}/RECORD", record)
    return path


def make_sdist(folder: Path, name: str, version: str) -> Path:
    import io
    import tarfile

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name.replace('-', '_')}-{version}.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        data = b"raise SystemExit('an sdist ran code')\n"
        info = tarfile.TarInfo(f"{name}-{version}/setup.py")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return path


def write_simple_index(files: Iterable[Path], root: Path) -> Path:
    """A static PEP 503 index of ``files`` under ``root/simple`` (an "upstream" for tests,
    served by any static HTTP server)."""
    from cloisonne.core.packages import parse_filename
    from packaging.utils import canonicalize_name

    by_name: dict[str, list[Path]] = {}
    for path in files:
        dist = parse_filename(path.name)
        assert dist is not None, path
        by_name.setdefault(canonicalize_name(dist.name), []).append(path)
    simple = root / "simple"
    for name, paths in by_name.items():
        (simple / name).mkdir(parents=True, exist_ok=True)
        links = []
        for p in paths:
            (simple / name / p.name).write_bytes(p.read_bytes())
            sha = hashlib.sha256(p.read_bytes()).hexdigest()
            links.append(f'<a href="{p.name}#sha256={sha}">{p.name}</a><br>')
        (simple / name / "index.html").write_text(
            "<!DOCTYPE html><html><body>" + "".join(links) + "</body></html>"
        )
    (simple / "index.html").write_text(
        "<html><body>" + "".join(f'<a href="{n}/">{n}</a>' for n in by_name) + "</body></html>"
    )
    return simple
