"""The web console in a real browser (Debian's headless Chromium driven by Selenium), signed in as each role,
against `sandboxwatch api serve` over a real ClickHouse server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api_fixtures import DA_NANG_PARTICIPANT, NATIONAL_PARTICIPANT, SECRETS
from tests.integration.console_fixtures import headless_chromium, serve_console, sign_in, wait
from tests.local_services import ClickHouseServer


@pytest.fixture(scope="module")
def console(clickhouse: ClickHouseServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_console(clickhouse, tmp_path_factory)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from headless_chromium(height=1000)


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
