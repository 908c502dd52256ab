"""The console's two languages: every key in both, Vietnamese numbers and dates, a finding sentence per kind."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from sandboxwatch.api import finding_text, i18n

CONSOLE = Path(i18n.__file__).parent / "console"


def test_every_message_key_exists_in_both_languages() -> None:
    english, vietnamese = i18n.catalogue("en"), i18n.catalogue("vi")
    assert set(english) == set(vietnamese)
    for key in english:
        # The same fields in both sentences, and a translation that is not just the English left in place.
        assert set(re.findall(r"{(\w+)}", english[key])) == set(re.findall(r"{(\w+)}", vietnamese[key])), key
        assert vietnamese[key].strip(), key


def test_every_key_the_console_uses_is_in_the_catalogue() -> None:
    used: set[str] = set()
    for path in CONSOLE.glob("*.js"):
        used |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", path.read_text(encoding="utf-8")))
    used |= set(re.findall(r'data-i18n(?:-placeholder)?="([\w.]+)"', (CONSOLE / "index.html").read_text()))
    assert used, "the console uses no catalogue key: the scan is broken"
    missing = used - set(i18n.catalogue("en"))
    assert not missing


def test_every_finding_kind_has_a_sentence_in_both_languages() -> None:
    for kind in finding_text.FINDING_KINDS:
        for language in i18n.LANGUAGES:
            assert f"finding.{kind}" in i18n.catalogue(language), (kind, language)


@pytest.mark.parametrize(
    ("value", "language", "expected"),
    [
        (Decimal("5000000000000"), "vi", "5.000 tỷ"),
        (Decimal("5000000000000"), "en", "5,000bn"),
        (Decimal("10000000000000"), "vi", "10.000 tỷ"),
        (Decimal("1250000000"), "vi", "1,25 tỷ"),
        (Decimal("400000000"), "vi", "400 triệu"),
        (Decimal("400000000"), "en", "400m"),
        (Decimal("999"), "vi", "999"),
    ],
)
def test_amounts_as_people_say_them(value: Decimal, language: str, expected: str) -> None:
    assert i18n.amount(value, language) == expected


def test_vietnamese_numbers_swap_the_separators() -> None:
    assert i18n.number(Decimal("1234567.891"), "vi") == "1.234.567,891"
    assert i18n.number(Decimal("1234567.891"), "en") == "1,234,567.891"
    assert i18n.number(Decimal("-1000"), "vi") == "-1.000"
    assert i18n.number(Decimal("0.5"), "vi", 2) == "0,50"
    assert i18n.percent(Decimal("0.952"), "vi") == "95,2%"
    assert i18n.percent(Decimal("1"), "vi") == "100%"
    assert i18n.percent(Decimal("0.952"), "en") == "95.2%"


def test_vietnamese_dates_are_day_month_year() -> None:
    assert i18n.day(date(2025, 10, 3), "vi") == "03/10/2025"
    assert i18n.day(datetime(2025, 12, 31, 23, 0, tzinfo=UTC), "vi") == "31/12/2025"
    assert i18n.day(date(2025, 10, 3), "en") == "2025-10-03"


@pytest.mark.parametrize(
    ("explicit", "header", "expected"),
    [
        (None, "vi-VN,vi;q=0.9,en;q=0.8", "vi"),
        (None, "fr-FR,en;q=0.5,vi;q=0.9", "vi"),
        (None, "en-GB,en;q=0.9", "en"),
        (None, "fr", "en"),
        (None, None, "en"),
        ("vi", "en", "vi"),
        ("en", "vi", "en"),
        ("xx", "vi", "vi"),
        (None, "vi;q=abc,en", "en"),
    ],
)
def test_language_from_the_switch_then_the_browser(explicit: str | None, header: str | None, expected: str) -> None:
    assert i18n.pick_language(explicit, header) == expected


def test_finding_text_is_rendered_from_the_fields_in_each_language() -> None:
    finding = {"kind": "reserve_coverage", "subject": "vn-casp-pilot-01", "observed": "0.952", "limit": "1"}
    assert finding_text.render(finding, "en") == (
        "custody covers only 95.2% of client liabilities; licence requires 100%"
    )
    assert finding_text.render(finding, "vi") == (
        "tài sản lưu ký chỉ đáp ứng 95,2% nghĩa vụ với khách hàng; giấy phép yêu cầu 100%"
    )
    big = {"kind": "max_transaction_value", "subject": "acc-7", "observed": "1250000000", "limit": "1000000000"}
    assert finding_text.render(big, "vi") == "giao dịch của acc-7 trị giá 1.250.000.000, vượt mức tối đa 1.000.000.000"
    capital = {"kind": "participant_limits", "observed": "5000000000000", "limit": "10000000000000"}
    assert finding_text.render(capital, "vi") == "chưa đáp ứng điều kiện thành viên: 5.000 tỷ so với hạn mức 10.000 tỷ"
    assert finding_text.render(capital, "en") == "participant condition not met: 5,000bn against a limit of 10,000bn"
    # A sentence needing a value the finding lacks, or an unknown kind, falls back to the generic one.
    assert finding_text.render({"kind": "max_transaction_value", "rule": "cap", "subject": "a"}, "en") == (
        "cap: finding about a"
    )
    assert finding_text.render({"kind": "new_kind", "rule": "r9", "subject": "a"}, "vi") == "r9: phát hiện về a"


def test_localising_keeps_the_stored_message() -> None:
    rows = [{"kind": "self_trade", "subject": "acc-1", "message": "Trade t1: account acc-1 is its own counterparty."}]
    finding_text.localise(rows, "vi")
    assert rows[0]["message"] == "Trade t1: account acc-1 is its own counterparty."
    assert rows[0]["message_text"] == "acc-1 đã tự giao dịch với chính mình"
