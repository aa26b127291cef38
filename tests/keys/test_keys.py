"""The key service against both keepers: a real SoftHSM2 token and the file keyring."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cloisonne.keys.masters import KeyError_, MasterKeeper, Pkcs11Keeper
from cloisonne.keys.service import KeyService
from cloisonne.keys.settings import KeySettings

from .conftest import PIN, SOFTHSM_MODULE, new_token


def test_a_project_key_is_generated_once_and_stored_only_wrapped(
    keeper: MasterKeeper, tmp_path: Path
) -> None:
    service = KeyService(keeper, tmp_path / "store")
    key = service.key("cardio", "pseudonymisation")
    assert len(key) == 32
    again = KeyService(keeper, tmp_path / "store")  # another process, later
    assert again.key("cardio", "pseudonymisation") == key
    assert again.key("onco", "pseudonymisation") != key
    stored = (tmp_path / "store" / "projects" / "cardio.json").read_bytes()
    assert key not in stored and key.hex().encode() not in stored
    assert (tmp_path / "store" / "projects" / "cardio.json").stat().st_mode & 0o077 == 0
    with pytest.raises(KeyError_, match="has no storage key"):
        service.key("cardio", "storage", create=False)


def test_rotation_rewraps_without_changing_keys_and_kills_old_copies(
    keeper: MasterKeeper, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    service = KeyService(keeper, store)
    keys = {p: service.key(p, "pseudonymisation") for p in ("cardio", "onco")}
    backup = tmp_path / "backup"
    shutil.copytree(store, backup)  # a copy kept somewhere before the rotation
    rotation = service.rotate()
    assert (rotation.master, rotation.rewrapped, rotation.destroyed) == (2, 2, [1])
    assert keeper.versions() == [2]
    assert {p: service.key(p, "pseudonymisation") for p in keys} == keys
    with pytest.raises(KeyError_, match="master v1"):
        KeyService(keeper, backup).key("cardio", "pseudonymisation")


def test_an_interrupted_rotation_is_finished_by_the_next(
    keeper: MasterKeeper, tmp_path: Path
) -> None:
    service = KeyService(keeper, tmp_path / "store")
    key = service.key("cardio", "pseudonymisation")
    keeper.create(2)  # a rotation that stopped after creating its version
    rotation = service.rotate()
    assert (rotation.master, rotation.destroyed) == (2, [1])
    assert service.key("cardio", "pseudonymisation") == key


def test_destroying_a_project_shreds_it_and_leaves_the_others(
    keeper: MasterKeeper, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    service = KeyService(keeper, store)
    service.key("cardio", "pseudonymisation")
    onco = service.key("onco", "storage")
    backup = tmp_path / "backup"
    shutil.copytree(store, backup)
    record = service.destroy("cardio")
    assert set(record["keys"]) == {"pseudonymisation"} and record["destroyed_masters"] == [1]
    assert not (store / "projects" / "cardio.json").exists()
    assert service.projects() == ["onco"] and service.key("onco", "storage") == onco
    with pytest.raises(KeyError_):  # the backup's copy of cardio's key is dead
        KeyService(keeper, backup).key("cardio", "pseudonymisation", create=False)


def test_a_tampered_wrapped_key_is_refused(keeper: MasterKeeper, tmp_path: Path) -> None:
    service = KeyService(keeper, tmp_path / "store")
    service.key("cardio", "pseudonymisation")
    path = tmp_path / "store" / "projects" / "cardio.json"
    doc = json.loads(path.read_text())
    wrapped = bytearray.fromhex(doc["keys"]["pseudonymisation"]["wrapped"])
    wrapped[5] ^= 1
    doc["keys"]["pseudonymisation"]["wrapped"] = wrapped.hex()
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyError_, match="does not unwrap"):
        service.key("cardio", "pseudonymisation")


def test_bad_names_are_refused(keeper: MasterKeeper, tmp_path: Path) -> None:
    service = KeyService(keeper, tmp_path / "store")
    with pytest.raises(KeyError_, match="invalid project id"):
        service.key("../etc", "pseudonymisation")
    with pytest.raises(KeyError_, match="invalid key purpose"):
        service.key("cardio", "Pseudo nymisation")


def test_the_master_key_never_leaves_the_token(softhsm: Path, tmp_path: Path) -> None:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    label = new_token(softhsm)
    KeyService(Pkcs11Keeper(SOFTHSM_MODULE, label, PIN), tmp_path).key("cardio", "storage")
    token = pkcs11.lib(SOFTHSM_MODULE).get_token(token_label=label)
    with token.open(user_pin=PIN) as session:
        (master,) = session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})
        assert master.label == "cloisonne-master-v1"
        assert master[Attribute.SENSITIVE] and not master[Attribute.EXTRACTABLE]
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            master[Attribute.VALUE]


def test_wrong_pin_and_missing_token_say_so(softhsm: Path) -> None:
    label = new_token(softhsm)
    with pytest.raises(KeyError_, match="PIN .* is wrong"):
        Pkcs11Keeper(SOFTHSM_MODULE, label, "0000").versions()
    with pytest.raises(KeyError_, match="no PKCS#11 token labelled 'nope'"):
        Pkcs11Keeper(SOFTHSM_MODULE, "nope", PIN).versions()


def test_settings_choose_the_keeper_from_the_environment(softhsm: Path, tmp_path: Path) -> None:
    pin = tmp_path / "pin"
    pin.write_text(PIN)
    pin.chmod(0o644)
    env = {"CLOISONNE_KEYS_BACKEND": "pkcs11", "CLOISONNE_PKCS11_TOKEN": new_token(softhsm),
           "CLOISONNE_PKCS11_PIN_FILE": str(pin)}  # fmt: skip
    with pytest.raises(KeyError_, match="readable by group or others"):
        KeySettings.from_env(env).service(tmp_path / "store")
    pin.chmod(0o600)
    service = KeySettings.from_env(env).service(tmp_path / "store")
    assert "PKCS#11" in service.status()["keeper"]
    assert "file keyring" in KeySettings.from_env({}).service(tmp_path / "s2").status()["keeper"]
