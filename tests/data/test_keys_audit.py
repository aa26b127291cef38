"""Hub-side pseudonymisation keys (wrapped by the key service, migrated from 0600 files) and the
JSON-lines audit hook."""

import json
import os
import stat

import pytest
from cloisonne.data.audit import JsonlAudit
from cloisonne.data.keys import KEY_BYTES, KeyFileError, project_key


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_created_private_and_stable(tmp_path):
    keys = tmp_path / "keys"
    first = project_key(keys, "cardio")
    assert len(first) == KEY_BYTES
    assert mode(keys) == 0o700 and mode(keys / "projects" / "cardio.json") == 0o600
    assert first.hex() not in (keys / "projects" / "cardio.json").read_text()  # only wrapped
    assert project_key(keys, "cardio") == first
    assert project_key(keys, "onco") != first


def test_an_earlier_versions_key_file_is_taken_under_the_master_and_shredded(keys_dir):
    legacy = keys_dir / "cardio.key"
    legacy.write_text("ab" * KEY_BYTES + "\n")
    os.chmod(legacy, 0o600)
    assert project_key(keys_dir, "cardio") == bytes.fromhex("ab" * KEY_BYTES)
    assert not legacy.exists()
    assert project_key(keys_dir, "cardio") == bytes.fromhex("ab" * KEY_BYTES)


def test_key_readable_by_others_refused(keys_dir):
    legacy = keys_dir / "cardio.key"
    legacy.write_text("ab" * KEY_BYTES + "\n")
    os.chmod(legacy, 0o640)
    with pytest.raises(KeyFileError, match="group/others"):
        project_key(keys_dir, "cardio")


def test_keys_dir_open_to_others_refused(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o755)
    os.chmod(keys, 0o755)
    with pytest.raises(KeyFileError):
        project_key(keys, "cardio")


def test_missing_key_not_created_when_asked(keys_dir):
    with pytest.raises(KeyFileError, match="has no pseudonymisation key"):
        project_key(keys_dir, "cardio", create=False)


def test_invalid_project_id_refused(keys_dir):
    with pytest.raises(ValueError):
        project_key(keys_dir, "../etc")


def test_malformed_key_refused(keys_dir):
    path = keys_dir / "cardio.key"
    path.write_text("not hex\n")
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="hex"):
        project_key(keys_dir, "cardio")


def test_jsonl_audit_appends_private_lines(tmp_path):
    log = tmp_path / "hub" / "audit.jsonl"
    audit = JsonlAudit(log)
    audit("data.provisioned", project="cardio", rows=3)
    audit("data.provisioned", project="onco", rows=4)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["project"] for e in events] == ["cardio", "onco"]
    assert events[0]["type"] == "data.provisioned" and "ts" in events[0]
    assert mode(log) == 0o600
