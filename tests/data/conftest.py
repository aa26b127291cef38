import os
from pathlib import Path

import pytest
from cloisonne.data.synth import write_warehouse

PATIENTS = 3000


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory) -> Path:
    """A small synthetic warehouse (read-only for tests: copy it before changing it)."""
    root = tmp_path_factory.mktemp("datasets")
    write_warehouse(root / "snds-synth", PATIENTS, seed=11)
    return root / "snds-synth"


@pytest.fixture
def keys_dir(tmp_path) -> Path:
    path = tmp_path / "keys"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)
