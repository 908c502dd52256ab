"""Values, window sums and the products rules compare are exact: the events' bounded decimals (28 significant
digits each) multiply to up to 84 digits, which the default decimal context (28) rounded, so a value just
above a limit could land on it, and a window's running total drifted as events entered and left."""

from __future__ import annotations

from decimal import Decimal

from tests.helpers import account, ev, licence_with, price, run, trade, ts

CAP = "{id: cap, kind: max_transaction_value, severity: breach, clause: c, max: 200000000, applies_to: [trade]}"
WINDOW = "{id: vol, kind: rolling_volume, severity: breach, clause: c, window: 3h, max: 500000000}"
FAIR = "{id: fair, kind: price_deviation, severity: warning, clause: c, max_pct: 3, sources: [binance]}"
RESERVE = "{id: res, kind: reserve_coverage, severity: critical, clause: c, min_ratio: 1.000000000000000001}"


def test_a_value_above_the_cap_beyond_the_28th_digit_is_above_it() -> None:
    # 2.23E-16 x 896860986547085201793721.9731 = 200000000.000000000000000000000000000012 exactly.
    found = run(licence_with(CAP), [account(), trade(quantity="2.23E-16", price="896860986547085201793721.9731")])
    assert [f.rule for f in found] == ["cap"] and found[0].observed is not None
    assert found[0].observed > Decimal(200000000)
    # One unit of the last place lower is exactly the cap: not above it.
    assert run(licence_with(CAP), [account(), trade(quantity="1", price="200000000")]) == []


def test_a_window_total_does_not_drift_when_a_huge_event_leaves_it() -> None:
    rows = [
        account(),
        trade(when=ts(hour=10), quantity="900000000000000000", price="1000000"),  # 9E+23 VND
        *(trade(when=ts(hour=11, minute=m), quantity="0.00004", price="1") for m in range(3)),
        # 3 hours after the huge trade it has left the window; the small ones (0.00012) have not.
        trade(when=ts(hour=13, second=1), quantity="499999999.99995", price="1"),
    ]
    found = run(licence_with(WINDOW), rows)
    # The first crossing (the huge trade) and a second one: 0.00012 + 499999999.99995 = 500000000.00007 > max.
    # Rounded to 28 digits beside 9E+23 the small trades were lost, and the second crossing with them.
    assert [(f.rule, f.observed) for f in found] == [
        ("vol", Decimal("900000000000000000000000")),
        ("vol", Decimal("500000000.00007")),
    ]


def test_price_deviation_and_reserve_coverage_compare_exactly() -> None:
    # |p - ref| x 100 is above 3.000000000000000001 x ref (55885793986829512259), whose 28-digit rounding
    # (up) was not below it: the trade was judged within the limit.
    fair = FAIR.replace("max_pct: 3", "max_pct: 3.000000000000000001")
    trade_row = trade(quantity="1", price="57562367806434397627.32885794")
    assert [f.rule for f in run(licence_with(fair), [account(), price(value="55885793986829512259"), trade_row])] == [
        "fair"
    ]
    # custody is below 1.000000000000000001 x liabilities, whose 28-digit rounding (down) is the custody itself.
    reserve = {"asset": "USDT", "custody_balance": "7812257330340487953863.79493",
               "client_liabilities": "7812257330340487946051.5376"}  # fmt: skip
    assert [f.rule for f in run(licence_with(RESERVE), [ev("reserve", ts(), **reserve)])] == ["res"]
