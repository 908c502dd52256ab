"""Licence limits in plain words: minimum limits (more is better) and maximum limits (less is better), each
with its wording in both languages and its colour band measured from the licence's own threshold."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandboxwatch.api.plain_limits import band, read
from sandboxwatch.rules_engine.licence import Licence, load_licence
from tests.helpers import DA_NANG, NATIONAL


@pytest.fixture(scope="module")
def national() -> Licence:
    return load_licence(NATIONAL)


@pytest.fixture(scope="module")
def da_nang() -> Licence:
    return load_licence(DA_NANG)


def test_half_the_required_capital_reads_as_half_and_is_a_breach(national: Licence) -> None:
    # The engine's use ratio for a minimum is required / held: 10,000bn / 5,000bn = 2.
    reading = read(national, "capital", "charter_capital_vnd", Decimal(2))
    assert reading.direction == "minimum"
    assert reading.observed == Decimal("5000000000000") and reading.level == Decimal("0.5")
    assert reading.band == "breach"
    assert reading.text("en") == "holds 5,000bn of the 10,000bn VND required charter capital (50%)"
    assert reading.text("vi") == "có 5.000 tỷ trên 10.000 tỷ VND vốn điều lệ tối thiểu (50%)"
    assert reading.clause.startswith("Resolution 05/2025/NQ-CP")


def test_capital_well_above_the_minimum_is_ok_and_just_above_is_near(national: Licence) -> None:
    double = read(national, "capital", "charter_capital_vnd", Decimal("0.5"))
    assert double.band == "ok"
    assert double.text("en") == "holds 20,000bn of the 10,000bn VND required charter capital (200%)"
    near = read(national, "capital", "charter_capital_vnd", Decimal("0.9"))  # holds 111% of the minimum
    assert near.band == "near"
    assert near.text("en") == "holds 11,111.11bn of the 10,000bn VND required charter capital (111.1%)"
    exact = read(national, "capital", "charter_capital_vnd", Decimal(1))  # the rule accepts capital == minimum
    assert exact.band == "near"


def test_reserves_short_of_the_licence(national: Licence) -> None:
    # use = min_ratio * liabilities / custody = 1 / 0.952
    reading = read(national, "reserves", "min_ratio:USDT", Decimal(1) / Decimal("0.952"))
    assert reading.direction == "minimum" and reading.band == "breach"
    assert reading.text("en") == "USDT reserves cover 95.2% of client liabilities; licence requires 100%"
    assert reading.text("vi") == "dự trữ USDT đáp ứng 95,2% nghĩa vụ với khách hàng; giấy phép yêu cầu 100%"
    empty = read(national, "reserves", "min_ratio:BTC", Decimal("Infinity"))  # custody of nothing
    assert empty.band == "breach"
    assert empty.text("en") == "BTC reserves cover 0% of client liabilities; licence requires 100%"


def test_foreign_ownership_is_a_maximum(national: Licence) -> None:
    reading = read(national, "capital", "foreign_ownership_pct", Decimal(30) / Decimal(49))
    assert reading.direction == "maximum" and reading.band == "ok"
    assert reading.text("en") == "foreign ownership 30% of at most 49% permitted (61.2% of the cap)"
    assert reading.text("vi") == "sở hữu nước ngoài 30% trên mức tối đa 49% được phép (61,2% mức trần)"
    over = read(national, "capital", "foreign_ownership_pct", Decimal(51) / Decimal(49))
    assert over.band == "breach"


def test_customer_cap_is_a_maximum(da_nang: Licence) -> None:
    reading = read(da_nang, "users", "max", Decimal("0.8123"))
    assert reading.direction == "maximum" and reading.band == "near"
    assert reading.text("en") == "8,123 verified customers of at most 10,000 allowed (81.2% of the cap)"
    assert reading.text("vi") == "8.123 khách hàng đã xác minh trên tối đa 10.000 được phép (81,2% mức trần)"
    assert read(da_nang, "users", "max", Decimal("0.4")).band == "ok"
    assert read(da_nang, "users", "max", Decimal("1.0001")).band == "breach"


@pytest.mark.parametrize(
    ("share", "expected"),
    [
        ("0", "ok"),
        ("0.7999", "ok"),
        ("0.8", "near"),
        ("1", "near"),
        ("1.000001", "breach"),
        ("Infinity", "breach"),
    ],
)
def test_bands_follow_the_alerting_margin(share: str, expected: str) -> None:
    assert band(Decimal(share)) == expected


def test_the_dict_the_api_returns(national: Licence) -> None:
    out = read(national, "capital", "charter_capital_vnd", Decimal(2)).to_dict("vi")
    assert out == {
        "rule": "capital",
        "limit": "charter_capital_vnd",
        "kind": "participant_limits",
        "clause": "Resolution 05/2025/NQ-CP: charter capital >= VND 10,000bn, foreign ownership <= 49%",
        "direction": "minimum",
        "share": "2",
        "observed": "5000000000000",
        "required": "10000000000000",
        "level": "0.5",
        "band": "breach",
        "band_text": "ngoài hạn mức",
        "text": "có 5.000 tỷ trên 10.000 tỷ VND vốn điều lệ tối thiểu (50%)",
    }
