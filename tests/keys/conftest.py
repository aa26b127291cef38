"""Keepers for the key tests: a file keyring and real SoftHSM2 tokens (Debian's softhsm2)."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloisonne.keys.masters import FileKeeper, MasterKeeper, Pkcs11Keeper

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "4321"
TOKENS = 40  # made before the library loads: it lists the tokens once per process
_labels = itertools.count(1)


@pytest.fixture(scope="session")
def softhsm() -> Iterator[Path]:
    """One SoftHSM2 configuration for the session: the library reads SOFTHSM2_CONF once per
    process, so every test token lives in the same token folder (each with its own label)."""
    folder = Path(tempfile.mkdtemp(prefix="cloisonne-softhsm-"))
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")  # fmt: skip
    for i in range(1, TOKENS + 1):
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", f"test-{i}",
                        "--pin", PIN, "--so-pin", "87654321"], check=True, capture_output=True,
                       env={**os.environ, "SOFTHSM2_CONF": str(conf)})  # fmt: skip
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous
        shutil.rmtree(folder, ignore_errors=True)


def new_token(softhsm: Path) -> str:
    """A token no other test used."""
    n = next(_labels)
    assert n <= TOKENS, "raise TOKENS"
    return f"test-{n}"


@pytest.fixture(params=["pkcs11", "file"])
def keeper(request: pytest.FixtureRequest, tmp_path: Path) -> MasterKeeper:
    if request.param == "file":
        return FileKeeper(tmp_path / "master")
    softhsm = request.getfixturevalue("softhsm")
    return Pkcs11Keeper(SOFTHSM_MODULE, new_token(softhsm), PIN)
