"""The web console in a real browser (Debian's headless Chromium driven by Selenium), signed in as each role,
against `sandboxwatch api serve` over a real ClickHouse server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sandboxwatch.api.keys import hash_key
from sandboxwatch.store.clickhouse_store import Store
from tests.api_fixtures import DA_NANG_PARTICIPANT, NATIONAL_PARTICIPANT, SECRETS, monitored_days
from tests.helpers import DA_NANG, NATIONAL, ROOT
from tests.local_services import ClickHouseServer, free_port

KEYS = f"""keys:
  - {{name: sbv-desk, role: regulator, sha256: {hash_key(SECRETS["regulator"])}}}
  - {{name: audit-firm, role: auditor, sha256: {hash_key(SECRETS["auditor"])}}}
  - {{name: alphatrue-ops, role: participant, participant: {DA_NANG_PARTICIPANT},
      sha256: {hash_key(SECRETS["alphatrue"])}}}
"""


@pytest.fixture(scope="module")
def console(clickhouse: ClickHouseServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
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
    import urllib.request

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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
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
    driver.set_window_size(1400, 1000)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait(driver: Any, condition: Any, timeout: float = 20.0) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def sign_in(driver: Any, base: str, secret: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/")
    driver.execute_script("sessionStorage.clear()")
    driver.get(base + "/")
    driver.find_element(By.ID, "login-key").send_keys(secret)
    driver.find_element(By.ID, "login-button").click()


def feed_participants(driver: Any) -> set[str]:
    from selenium.webdriver.common.by import By

    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#feed tbody tr.finding-row"))
    rows = driver.find_elements(By.CSS_SELECTOR, "#feed tbody tr.finding-row")
    return {row.get_attribute("data-participant") for row in rows}


def open_first_finding(driver: Any) -> None:
    from selenium.webdriver.common.by import By

    driver.find_elements(By.CSS_SELECTOR, "#feed tbody tr.finding-row")[0].click()
    wait(driver, lambda d: d.find_element(By.ID, "detail").is_displayed())
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#evidence pre.evidence-event"))


@pytest.mark.parametrize("role", ["regulator", "auditor", "alphatrue"])
def test_console_signs_in_as_each_role(console: str, browser: Any, role: str) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, console, SECRETS[role])
    wait(browser, lambda d: d.find_element(By.ID, "whoami").is_displayed())
    who = browser.find_element(By.ID, "whoami")
    expected_role = "participant" if role == "alphatrue" else role
    assert who.get_attribute("data-role") == expected_role
    participants = feed_participants(browser)
    if role == "alphatrue":
        assert participants == {DA_NANG_PARTICIPANT}
    else:
        assert participants <= {DA_NANG_PARTICIPANT, NATIONAL_PARTICIPANT} and participants

    open_first_finding(browser)
    assert "event_id" in browser.find_element(By.CSS_SELECTOR, "#evidence pre.evidence-event").text
    note_form = browser.find_element(By.ID, "note-form")
    if role == "regulator":
        assert note_form.is_displayed()
        browser.find_element(By.ID, "note-text").send_keys("reviewed in the browser test")
        browser.find_element(By.ID, "note-button").click()
        wait(browser, lambda d: "reviewed in the browser test" in d.find_element(By.ID, "notes").text)
    else:
        assert not note_form.is_displayed()
    browser.find_element(By.ID, "detail-close").click()

    # Search, restricted to what the role may see.
    browser.find_element(By.CSS_SELECTOR, "nav button[data-tab='search']").click()
    options = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#search-participant option")][1:]
    assert options == ([DA_NANG_PARTICIPANT] if role == "alphatrue" else [DA_NANG_PARTICIPANT, NATIONAL_PARTICIPANT])
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.CSS_SELECTOR, "#search-form select[name='severity']")).select_by_visible_text(
        "critical"
    )
    browser.find_element(By.ID, "search-button").click()
    wait(browser, lambda d: "findings" in d.find_element(By.ID, "search-count").text)
    severities = {r.find_elements(By.TAG_NAME, "td")[2].text for r in
                  browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")}  # fmt: skip
    assert severities <= {"critical"}

    # Limit utilisation per visible participant.
    browser.find_element(By.CSS_SELECTOR, "nav button[data-tab='utilisation']").click()
    wait(browser, lambda d: d.find_element(By.ID, "utilisation").get_attribute("data-state") == "loaded")
    shown = {
        s.get_attribute("data-participant") for s in browser.find_elements(By.CSS_SELECTOR, ".participant-utilisation")
    }
    assert shown == ({DA_NANG_PARTICIPANT} if role == "alphatrue" else {DA_NANG_PARTICIPANT, NATIONAL_PARTICIPANT})


def test_console_refuses_an_unknown_key(console: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, console, "not-a-key")
    wait(browser, lambda d: "Sign-in failed" in d.find_element(By.ID, "login-error").text)
    assert not browser.find_element(By.ID, "app").is_displayed()
