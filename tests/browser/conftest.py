"""Browser tests: Debian's chromium driven by Playwright (never a downloaded browser build)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloisonne.platform.localhub import LocalHub

from ..integration.conftest import PASSWORDS, running_hub

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip
ACCOUNTS = {**PASSWORDS, "admin": "adm-pw"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        raise pytest.UsageError("the browser tests run a real platform and need root")


@pytest.fixture(scope="module")
def hub() -> Iterator[LocalHub]:
    with running_hub("b", ACCOUNTS, admins=("admin",)) as hub:
        yield hub


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


def sign_in(page: object, hub: LocalHub, user: str, password: str) -> None:
    page.goto(f"{hub.url}/hub/login")  # type: ignore[attr-defined]
    page.fill("#username", user)  # type: ignore[attr-defined]
    page.fill("#password", password)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
