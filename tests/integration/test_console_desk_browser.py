"""The regulators' desk in a real browser (Debian's headless Chromium): the overview with its charts, the
language switch, licence limits in plain words and the participant's self-check upload, against
`sandboxwatch api serve` over a real ClickHouse server. Each page is saved as a screenshot for a person to
look at: into $SANDBOXWATCH_SCREENSHOTS, else tests/artifacts/screenshots/ (kept by the run, not committed)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest

from tests.api_fixtures import DA_NANG_PARTICIPANT, NATIONAL_PARTICIPANT, SECRETS
from tests.helpers import ROOT
from tests.integration.console_fixtures import sign_in, wait
from tests.integration.test_console_browser import browser, console  # noqa: F401

SCREENSHOTS = Path(os.environ.get("SANDBOXWATCH_SCREENSHOTS") or ROOT / "tests" / "artifacts" / "screenshots")
RESERVE_CSV = (
    "event_id,type,participant,ts,asset,custody_balance,client_liabilities\n"
    f"web-r1,reserve,{DA_NANG_PARTICIPANT},2025-11-10T12:00:30+07:00,USDT,952,1000\n"
    f"web-r2,reserve,{DA_NANG_PARTICIPANT},2025-11-10T13:00:30+07:00,USDT,1200,1000\n"
)


def screenshot(driver: Any, name: str) -> Path:
    """The whole page, not just the window: the window is stretched to the document's height first."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return Math.max(document.documentElement.scrollHeight, 1000)")
    driver.set_window_size(1400, min(int(height) + 40, 6000))
    path = SCREENSHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)
    assert path.stat().st_size > 10_000  # a drawn page, not a blank one
    return path


def by_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def signed_in(driver: Any, base: str, who: str, language: str = "en") -> None:
    sign_in(driver, base, SECRETS[who])
    wait(driver, lambda d: by_css(d, "#whoami") and by_css(d, "#whoami")[0].is_displayed())
    if driver.execute_script("return i18n.lang") != language:
        choose_language(driver, language)


def choose_language(driver: Any, language: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(by_css(driver, "#language")[0]).select_by_value(language)
    wait(driver, lambda d: d.execute_script("return i18n.lang") == language)


def tab(driver: Any, name: str) -> None:
    by_css(driver, f"nav button[data-tab='{name}']")[0].click()


def show_overview(
    driver: Any, period: str = "2025-11-01 to 2025-11-14", first: str = "2025-11-01", last: str = "2025-11-14"
) -> None:
    tab(driver, "overview")
    wait(driver, lambda d: d.find_element("id", "overview").get_attribute("data-state") in ("loaded", "failed"), 90)
    driver.execute_script(
        "document.getElementById('overview-from').value = arguments[0];"
        "document.getElementById('overview-to').value = arguments[1];",
        first,
        last,
    )
    by_css(driver, "#overview-button")[0].click()
    wait(driver, lambda d: d.find_element("id", "overview-period").text == period
         and d.find_element("id", "overview").get_attribute("data-state") == "loaded", 90)  # fmt: skip


def test_overview_side_by_side_with_charts(console: str, browser: Any) -> None:  # noqa: F811
    signed_in(browser, console, "regulator")
    # Both simulated pilot days: Da Nang's in November 2025, the national pilot's in January 2026.
    show_overview(browser, "2025-11-01 to 2026-01-20", "2025-11-01", "2026-01-20")
    cards = by_css(browser, ".overview-participant")
    assert [c.get_attribute("data-participant") for c in cards] == [DA_NANG_PARTICIPANT, NATIONAL_PARTICIPANT]
    for card in cards:
        # uPlot (served from the package) drew each chart on a canvas.
        assert card.find_elements("css selector", ".findings-chart .uplot canvas")
        assert card.find_elements("css selector", ".limit-chart .uplot canvas")
        assert card.find_elements("css selector", "table.open-by-age tbody tr")
    da_nang = cards[0]
    users = da_nang.find_element("css selector", ".overview-limit[data-rule='users'] .plain-limit")
    assert users.get_attribute("data-band") == "breach"
    assert "10,001 verified customers of at most 10,000 allowed (100.01% of the cap)" in users.text
    clause = da_nang.find_element("css selector", ".overview-limit[data-rule='users'] .clause")
    assert "customer cap" in clause.text
    open_rows = {r.get_attribute("data-bucket"): r.text for r in
                 da_nang.find_elements("css selector", "table.open-by-age tbody tr")}  # fmt: skip
    # Aged at the end of the period: Da Nang's findings are over 30 days old by 2026-01-20.
    assert open_rows["d30_plus"].split()[-3:] == ["2", "15", "2"]  # warning, breach, critical
    national = cards[1].find_element("css selector", ".overview-limit[data-limit='charter_capital_vnd']")
    assert "holds 5,000bn of the 10,000bn VND required charter capital (50%)" in national.text
    screenshot(browser, "overview-regulator")


def test_overview_shows_a_participant_only_its_own(console: str, browser: Any) -> None:  # noqa: F811
    signed_in(browser, console, "alphatrue")
    show_overview(browser)
    cards = by_css(browser, ".overview-participant")
    assert [c.get_attribute("data-participant") for c in cards] == [DA_NANG_PARTICIPANT]
    assert NATIONAL_PARTICIPANT not in browser.find_element("id", "overview").text
    screenshot(browser, "overview-participant")


def test_plain_limits_page(console: str, browser: Any) -> None:  # noqa: F811
    signed_in(browser, console, "regulator")
    tab(browser, "utilisation")
    wait(browser, lambda d: d.find_element("id", "utilisation").get_attribute("data-state") == "loaded", 90)
    capital = browser.find_element(
        "css selector", f".participant-utilisation[data-participant='{NATIONAL_PARTICIPANT}'] "
        ".plain-limit[data-limit='charter_capital_vnd']"
    )  # fmt: skip
    assert capital.get_attribute("data-band") == "breach" and capital.get_attribute("data-direction") == "minimum"
    assert "holds 5,000bn of the 10,000bn VND required charter capital (50%)" in capital.text
    assert capital.find_element("css selector", ".bar span").get_attribute("class") == "band-breach"
    width = browser.execute_script("return arguments[0].querySelector('.bar span').style.width", capital)
    assert width == "50%"  # half the bar: half the required capital, not a full red 200%
    reserves = browser.find_element(
        "css selector", f".participant-utilisation[data-participant='{NATIONAL_PARTICIPANT}'] "
        ".plain-limit[data-limit='min_ratio:USDT']"
    )  # fmt: skip
    assert "USDT reserves cover 105% of client liabilities; licence requires 100%" in reserves.text
    assert reserves.get_attribute("data-band") == "near"
    screenshot(browser, "limits-en")


def test_language_switch_is_kept_per_user(console: str, browser: Any) -> None:  # noqa: F811
    signed_in(browser, console, "regulator")
    choose_language(browser, "vi")
    wait(browser, lambda d: by_css(d, "nav button[data-tab='overview']")[0].text == "Tổng quan")
    wait(browser, lambda d: by_css(d, "#feed tbody tr.finding-row"))
    # Read in one script: the feed is redrawn every few seconds, so element handles go stale.
    cells = "return [...document.querySelectorAll('#feed tbody tr')].map(r => r.cells[{}].textContent)"
    vietnamese = {"thông tin", "cảnh báo", "vi phạm", "nghiêm trọng"}
    wait(browser, lambda d: set(d.execute_script(cells.format(2))) <= vietnamese)
    first_time = browser.execute_script(cells.format(0))[0]
    assert first_time[2] == "/" and first_time[5] == "/"  # dd/mm/yyyy
    screenshot(browser, "feed-vi")
    show_overview(browser, "01/11/2025 đến 14/11/2025")
    screenshot(browser, "overview-vi")
    tab(browser, "utilisation")
    wait(browser, lambda d: "có 5.000 tỷ trên 10.000 tỷ VND vốn điều lệ tối thiểu (50%)" in
         d.find_element("id", "utilisation").text)  # fmt: skip
    screenshot(browser, "limits-vi")
    # Another user chooses English; each finds their own choice when signing in again.
    signed_in(browser, console, "auditor", "en")
    assert by_css(browser, "nav button[data-tab='overview']")[0].text == "Overview"
    sign_in(browser, console, SECRETS["regulator"])
    wait(browser, lambda d: by_css(d, "#whoami")[0].is_displayed() and d.execute_script("return i18n.lang") == "vi")
    wait(browser, lambda d: by_css(d, "nav button[data-tab='feed']")[0].text == "Phát hiện trực tiếp")
    choose_language(browser, "en")


def test_self_check_upload(console: str, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    signed_in(browser, console, "alphatrue")
    tab(browser, "self-check")
    options = [o.text for o in by_css(browser, "#upload-participant option")]
    assert options == [DA_NANG_PARTICIPANT]
    events = tmp_path / "reserves.csv"
    events.write_text(RESERVE_CSV)
    by_css(browser, "#upload-file")[0].send_keys(str(events))
    by_css(browser, "#upload-button")[0].click()
    wait(browser, lambda d: d.find_element("id", "upload-result").get_attribute("data-state") == "failed")
    rows = by_css(browser, "#upload-findings tbody tr")
    assert len(rows) == 1
    assert rows[0].find_elements("tag name", "td")[4].text == (
        "custody covers only 95.2% of client liabilities; licence requires 100%"
    )
    assert "2 events checked against DN-136-PILOT-01: 1 findings, 0 invalid lines" in (
        browser.find_element("id", "upload-summary").text
    )
    assert "not stored" in browser.find_element("id", "upload-summary").text
    screenshot(browser, "upload-result")

    # A line of another participant: refused whole, with its line number.
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(RESERVE_CSV + f"web-r3,reserve,{NATIONAL_PARTICIPANT},2025-11-10T14:00:00+07:00,USDT,1,1\n")
    by_css(browser, "#upload-file")[0].send_keys(str(mixed))
    by_css(browser, "#upload-button")[0].click()
    wait(browser, lambda d: d.find_element("id", "upload-result").get_attribute("data-state") == "refused")
    assert "other participants" in browser.find_element("id", "upload-verdict").text
    assert browser.find_element("id", "upload-summary").text == "line: 4"
    screenshot(browser, "upload-refused")


@pytest.fixture(autouse=True)
def _clean_storage(browser: Any) -> None:  # noqa: F811
    """Each test starts from no stored language choice except what it sets itself."""
    with contextlib.suppress(Exception):  # no page of the console loaded yet: nothing stored
        browser.execute_script("localStorage.clear()")
