"""What every browser test of the console starts from: `sandboxwatch api serve` over a real ClickHouse server
with the three roles' keys, and Debian's headless Chromium. One place, so the console tests cannot drift apart
in how they start the server or the browser."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandboxwatch.api.keys import hash_key
from sandboxwatch.store.clickhouse_store import Store
from tests.api_fixtures import DA_NANG_PARTICIPANT, SECRETS, monitored_days
from tests.helpers import DA_NANG, NATIONAL, ROOT
from tests.local_services import ClickHouseServer, free_port

KEYS = f"""keys:
  - {{name: sbv-desk, role: regulator, sha256: {hash_key(SECRETS["regulator"])}}}
  - {{name: audit-firm, role: auditor, sha256: {hash_key(SECRETS["auditor"])}}}
  - {{name: alphatrue-ops, role: participant, participant: {DA_NANG_PARTICIPANT},
      sha256: {hash_key(SECRETS["alphatrue"])}}}
"""


def serve_console(clickhouse: ClickHouseServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API and console over a fresh database of monitored days; yields the base URL, stops the server."""
    url = clickhouse.url("c" + uuid.uuid4().hex[:10])
    monitored_days(Store.open(url), accounts=40)
    folder = tmp_path_factory.mktemp("api")
    (folder / "keys.yaml").write_text(KEYS)
    port = free_port()
    log = (folder / "api.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "sandboxwatch.cli", "api", "serve", "--clickhouse", url, "--keys",
         str(folder / "keys.yaml"), "--licence", str(DA_NANG), "--licence", str(NATIONAL), "--port", str(port)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((folder / "api.log").read_text()) from None
            time.sleep(0.3)
    yield base
    server.terminate()
    server.wait(20)


def headless_chromium(height: int = 1000) -> Iterator[Any]:
    """A Selenium driver on Debian's chromium; on CI a missing browser fails the run instead of skipping it."""
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        if os.environ.get("CI"):
            raise AssertionError("chromium and chromium-driver are not installed")
        pytest.skip("Debian chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    profile = tempfile.mkdtemp(prefix="sandboxwatch-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or ""), options=options)
    driver.set_window_size(1400, height)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait(driver: Any, condition: Callable[[Any], Any], timeout: float = 60.0) -> Any:
    """Until ``condition`` holds; a table redrawn while it is read (stale rows) is read again. Returns as soon
    as it holds: the bound is for a machine shared with other runs (20 s timed out once under load: a cases
    table still loading)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def sign_in(driver: Any, base: str, secret: str) -> None:
    """A fresh session (the key is kept in sessionStorage), then the key typed into the login form."""
    from selenium.webdriver.common.by import By

    driver.get(base + "/")
    driver.execute_script("sessionStorage.clear()")
    driver.get(base + "/")
    driver.find_element(By.ID, "login-key").send_keys(secret)
    driver.find_element(By.ID, "login-button").click()
