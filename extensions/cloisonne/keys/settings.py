"""Which keeper holds the site master key: one traitlets class, the environment an adapter."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from traitlets import Enum, Unicode
from traitlets.config import Configurable

from .masters import FileKeeper, KeyError_, MasterKeeper, Pkcs11Keeper
from .service import KeyService


class KeySettings(Configurable):
    backend = Enum(["file", "pkcs11"], default_value="file", config=True,
                   help="Keeper of the site master key: 'pkcs11' (an HSM, or SoftHSM2) or "
                        "'file' (0600 files under the key store; development only).")  # fmt: skip
    pkcs11_module = Unicode("/usr/lib/softhsm/libsofthsm2.so", config=True,
                            help="Path of the PKCS#11 module (the HSM's library).")  # fmt: skip
    pkcs11_token = Unicode("cloisonne", config=True,
                           help="Label of the PKCS#11 token holding the master keys.")  # fmt: skip
    pkcs11_pin_file = Unicode("", config=True,
                              help="File holding the token's user PIN (mode 0600).")  # fmt: skip

    ENV = {"backend": "CLOISONNE_KEYS_BACKEND", "pkcs11_module": "CLOISONNE_PKCS11_MODULE",
           "pkcs11_token": "CLOISONNE_PKCS11_TOKEN",
           "pkcs11_pin_file": "CLOISONNE_PKCS11_PIN_FILE"}  # fmt: skip

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KeySettings:
        return cls(**{trait: env[var] for trait, var in cls.ENV.items() if env.get(var)})

    def keeper(self, store: Path) -> MasterKeeper:
        if self.backend == "file":
            return FileKeeper(store / "master")
        if not self.pkcs11_pin_file:
            raise KeyError_("CLOISONNE_PKCS11_PIN_FILE is not set: the token's PIN is needed")
        pin_file = Path(self.pkcs11_pin_file)
        if pin_file.stat().st_mode & 0o077:
            raise KeyError_(f"{pin_file} is readable by group or others: refusing it")
        return Pkcs11Keeper(self.pkcs11_module, self.pkcs11_token, pin_file.read_text().strip())

    def service(self, store: str | Path) -> KeyService:
        store = Path(store)
        return KeyService(self.keeper(store), store)
