"""The console's case desk in a real browser (Debian's headless Chromium driven by Selenium) against
`sandboxwatch api serve` over a real ClickHouse server: a regulator works cases one by one and in bulk, a
participant answers its own, an auditor only reads. Every page visited is saved as a screenshot
(tests/integration/console_screens.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api_fixtures import DA_NANG_PARTICIPANT, NATIONAL_PARTICIPANT, SECRETS
from tests.integration.console_fixtures import headless_chromium, serve_console, sign_in, wait
from tests.integration.console_screens import save_screen
from tests.local_services import ClickHouseServer


@pytest.fixture(scope="module")
def console(clickhouse: ClickHouseServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_console(clickhouse, tmp_path_factory)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from headless_chromium(height=1100)


def by_id(driver: Any, name: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, name)


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def open_cases(driver: Any, base: str, secret: str) -> None:
    sign_in(driver, base, secret)
    wait(driver, lambda d: by_id(d, "whoami").is_displayed())
    wait(driver, lambda d: css(d, "nav button[data-tab='cases']"))
    css(driver, "nav button[data-tab='cases']")[0].click()
    wait(driver, lambda d: by_id(d, "cases-table").get_attribute("data-state") == "loaded" and css(d, "tr.case-row"))


def rows(driver: Any) -> list[Any]:
    return css(driver, "#cases-table tbody tr.case-row")


def open_case(driver: Any, index: int) -> str:
    row = rows(driver)[index]
    finding_id = str(row.get_attribute("data-finding-id"))
    row.find_elements("css selector", "td")[-1].click()
    wait(driver, lambda d: by_id(d, "case-detail").get_attribute("data-finding-id") == finding_id
         and by_id(d, "case-detail").get_attribute("data-state") == "loaded")  # fmt: skip
    return finding_id


def case_state(driver: Any) -> str:
    return str(by_id(driver, "case-detail").get_attribute("data-case-state"))


def test_regulator_works_cases_one_by_one_and_in_bulk(console: str, browser: Any) -> None:
    from selenium.webdriver.support.ui import Select

    open_cases(browser, console, SECRETS["regulator"])
    listed = rows(browser)
    assert {r.get_attribute("data-participant") for r in listed} == {DA_NANG_PARTICIPANT, NATIONAL_PARTICIPANT}
    assert {r.get_attribute("data-state") for r in listed} == {"open"}
    assert by_id(browser, "cases-bulk").is_displayed() and css(browser, "tr.case-row input.case-select")
    save_screen(browser, "cases-regulator-list")

    finding = open_case(browser, 0)
    assert by_id(browser, "case-actions").is_displayed() and not by_id(browser, "case-answer").is_displayed()
    by_id(browser, "case-acknowledge").click()
    wait(browser, lambda d: case_state(d) == "acknowledged")
    by_id(browser, "case-assignee").send_keys("an.nguyen")
    by_id(browser, "case-assign").click()
    wait(browser, lambda d: "an.nguyen" in by_id(d, "case-history").text)
    by_id(browser, "case-resolve").click()  # no reason: refused with the API's reason, the case unchanged
    wait(browser, lambda d: "422" in by_id(d, "cases-message").text and "reason" in by_id(d, "cases-message").text)
    assert case_state(browser) == "acknowledged"
    Select(by_id(browser, "case-resolution")).select_by_value("false_positive")
    by_id(browser, "case-reason").send_keys("test account of the exchange")
    by_id(browser, "case-resolve").click()
    wait(browser, lambda d: case_state(d) == "resolved")
    history = [li.get_attribute("class") for li in css(browser, "#case-history li.transition")]
    assert history == ["transition action-acknowledge", "transition action-assign", "transition action-resolve"]
    assert "test account of the exchange" in by_id(browser, "case-history").text
    save_screen(browser, "cases-regulator-detail-resolved")
    by_id(browser, "case-close").click()

    # Bulk: acknowledge three open cases at once.
    wait(browser, lambda d: [r for r in rows(d) if r.get_attribute("data-finding-id") == finding
                             and r.get_attribute("data-state") == "resolved"])  # fmt: skip
    chosen_ids = {str(r.get_attribute("data-finding-id")) for r in css(browser, "tr.case-row[data-state='open']")[:3]}
    for finding_id in sorted(chosen_ids):
        css(browser, f"tr.case-row[data-finding-id='{finding_id}'] input.case-select")[0].click()
    assert by_id(browser, "cases-selected").text == "3 selected"
    by_id(browser, "bulk-acknowledge").click()
    wait(browser, lambda d: by_id(d, "cases-message").text == "3 done, 0 refused")
    Select(by_id(browser, "cases-state")).select_by_value("acknowledged")
    by_id(browser, "cases-filter-button").click()
    wait(browser, lambda d: {r.get_attribute("data-finding-id") for r in rows(d)} == chosen_ids)
    save_screen(browser, "cases-regulator-bulk-acknowledged")

    # The page's language switched to Vietnamese: the case desk follows it.
    browser.execute_script("document.documentElement.lang = 'vi'")
    wait(browser, lambda d: css(d, "nav button[data-tab='cases']")[0].text == "Hồ sơ xử lý")
    wait(browser, lambda d: by_id(d, "cases-count").text == "3 hồ sơ" and "đã tiếp nhận" in rows(d)[0].text)
    assert by_id(browser, "cases-selected").text == "đã chọn 0"
    save_screen(browser, "cases-regulator-vietnamese")
    browser.execute_script("document.documentElement.lang = 'en'")


def test_participant_sees_and_answers_only_its_own_cases(console: str, browser: Any, tmp_path: Path) -> None:
    open_cases(browser, console, SECRETS["alphatrue"])
    assert {r.get_attribute("data-participant") for r in rows(browser)} == {DA_NANG_PARTICIPANT}
    assert not by_id(browser, "cases-bulk").is_displayed() and not css(browser, "tr.case-row input.case-select")
    headers = [th.text for th in css(browser, "#cases-table thead th") if th.is_displayed()]
    assert headers == ["due", "participant", "severity", "rule", "state", "message"]
    save_screen(browser, "cases-participant-list")

    states = [r.get_attribute("data-state") for r in rows(browser)]
    # An open case (one the regulator resolved above is closed to answers).
    open_case(browser, states.index("open"))
    assert not by_id(browser, "case-actions").is_displayed() and by_id(browser, "case-answer").is_displayed()
    by_id(browser, "answer-text").send_keys("Customer cap restored on 12 November; see ticket 42.")
    by_id(browser, "answer-send").click()
    wait(browser, lambda d: "see ticket 42" in by_id(d, "case-history").text)
    note = tmp_path / "remediation.txt"
    note.write_text("Root cause: a batch job opened duplicate accounts.\nFixed in release 3.4.\n", encoding="utf-8")
    by_id(browser, "answer-file").send_keys(str(note))
    by_id(browser, "answer-send").click()
    wait(browser, lambda d: "[remediation.txt]" in by_id(d, "case-history").text)
    notes = [pre.text for pre in css(browser, "#case-history pre.answer-note")]
    assert notes == [
        "Customer cap restored on 12 November; see ticket 42.",
        "[remediation.txt]\nRoot cause: a batch job opened duplicate accounts.\nFixed in release 3.4.",
    ]
    assert case_state(browser) == "open"
    save_screen(browser, "cases-participant-answered")


def test_auditor_reads_cases_and_changes_nothing(console: str, browser: Any) -> None:
    open_cases(browser, console, SECRETS["auditor"])
    assert len({r.get_attribute("data-participant") for r in rows(browser)}) == 2
    assert not by_id(browser, "cases-bulk").is_displayed()
    open_case(browser, 0)
    assert not by_id(browser, "case-actions").is_displayed() and not by_id(browser, "case-answer").is_displayed()
    save_screen(browser, "cases-auditor-detail")
