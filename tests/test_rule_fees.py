"""The ``fees`` parameter of value-based rules: gross value by default, value plus the valued fee on request."""

from __future__ import annotations

import pytest

from sandboxwatch.rules_engine.licence import LicenceError
from tests.helpers import licence_with, onchain, price, rules_of, run, trade, ts

R = "severity: breach, clause: c"
CAP = f"id: cap, kind: max_transaction_value, {R}, max: 2600000"  # 100 USDT at 26000 VND


def test_gross_value_by_default_fees_ignored() -> None:
    found = run(licence_with(f"{{{CAP}}}"), [trade(quantity="100", fee="50000", fee_asset="VND")])
    assert found == []


def test_fees_included_push_a_trade_over_the_cap() -> None:
    lic = licence_with(f"{{{CAP}, fees: include}}")
    under = trade(quantity="100", fee="0", fee_asset="VND")
    over = trade(quantity="100", fee="0.5", fee_asset="USDT")  # 0.5 USDT at 26000 = 13000 VND
    found = run(lic, [price(ts(hour=0)), under, over])
    assert [f.evidence for f in found] == [(over["event_id"],)]
    assert found[0].observed == 2613000


def test_a_withdrawal_fee_counts_on_top_of_the_amount() -> None:
    lic = licence_with(f"{{{CAP}, fees: include}}")
    w = onchain(amount="99.99", fee="1", fee_asset="USDT")
    found = run(lic, [price(ts(hour=0)), w])
    assert rules_of(found) == ["cap"] and found[0].observed == 2625740


def test_an_unpriced_fee_asset_falls_back_to_the_gross_value() -> None:
    lic = licence_with(f"{{{CAP}, fees: include}}")
    over_gross = trade(quantity="101", fee="0.001", fee_asset="BNB")
    under_gross = trade(quantity="99", fee="0.001", fee_asset="BNB")
    found = run(lic, [over_gross, under_gross])
    assert [f.evidence for f in found] == [(over_gross["event_id"],)] and found[0].observed == 2626000


def test_rolling_volume_with_fees() -> None:
    lic = licence_with(f"{{id: vol, kind: rolling_volume, {R}, window: 24h, max: 5200000, fees: include}}")
    rows = [trade(quantity="100", fee="1000", fee_asset="VND", when=ts(hour=h)) for h in (3, 4)]
    assert rules_of(run(lic, rows)) == ["vol"]
    lic = licence_with(f"{{id: vol, kind: rolling_volume, {R}, window: 24h, max: 5200000}}")
    assert run(lic, rows) == []


def test_fees_must_be_include_or_exclude() -> None:
    with pytest.raises(LicenceError, match="fees"):
        licence_with(f"{{{CAP}, fees: yes}}")
