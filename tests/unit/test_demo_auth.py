from __future__ import annotations

import asyncio

from cloisonne.auth.demo import DemoAuthenticator, check_password, hash_password, write_users


def test_hash_and_check() -> None:
    stored = hash_password("s3cret")
    assert stored.startswith("scrypt$") and "s3cret" not in stored
    assert check_password("s3cret", stored)
    assert not check_password("s3cret ", stored)
    assert not check_password("s3cret", "md5$x$y") and not check_password("x", "garbage")


def test_authenticator_checks_the_file(tmp_path) -> None:
    users = tmp_path / "users.yaml"
    write_users(users, {"alice": {"password_hash": hash_password("pw"), "admin": False},
                        "root": {"password_hash": hash_password("rpw"), "admin": True}})  # fmt: skip
    assert oct(users.stat().st_mode & 0o777) == "0o600"
    auth = DemoAuthenticator(users_file=str(users))
    login = lambda u, p: asyncio.run(auth.authenticate(None, {"username": u, "password": p}))  # noqa: E731
    assert login("alice", "pw") == {"name": "alice", "admin": False}
    assert login(" Alice ", "pw") == {"name": "alice", "admin": False}
    assert login("root", "rpw") == {"name": "root", "admin": True}
    assert login("alice", "wrong") is None and login("mallory", "pw") is None
    assert auth.check_allowed("alice") and not auth.check_allowed("mallory")
