"""ccxt records -> canonical events (pure): network names, fees, completion times; and the contract's checks."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from sandboxwatch.ingest.exchange_events import RecordError, funds_event, trade_event
from sandboxwatch.ingest.settings import ExchangeSettings
from sandboxwatch.rules_engine.event_parser import FieldError, event_from_dict
from sandboxwatch.rules_engine.timestamps import parse_timestamp

SETTINGS = ExchangeSettings(
    participant="p", exchange="binance", symbols=(), account="C-1", account_field=None, site=None,
    api_key_env=None, secret_env=None, api_base_url=None, deposits=True, withdrawals=True,
    fiat_assets=frozenset({"VND"}), chain_names={}, start=parse_timestamp("2025-01-01T00:00:00Z"),
    poll_interval_s=1.0, timeout_s=1.0, page_limit=10,
)  # fmt: skip


def withdrawal(**changes: Any) -> dict[str, Any]:
    record = {
        "id": "w1", "currency": "USDT", "amount": "51", "timestamp": 1618318019000, "network": "TRX",
        "addressTo": "TYDmtuWL8bsyjvcauUTerpfYyVhFtBjqyo", "txid": "168a75", "status": "ok",
        "fee": {"currency": "USDT", "cost": "1"}, "updated": None,
        "info": {"applyTime": "2021-04-13 12:46:59", "completeTime": "2021-04-13 12:50:02"},
    }  # fmt: skip
    return record | changes


@pytest.mark.parametrize(
    ("network", "chain"),
    [("TRX", "tron"), ("TRC20", "tron"), ("ETH", "ethereum"), ("ERC20", "ethereum"), ("BSC", "bsc"),
     ("BEP20", "bsc"), ("SOL", "solana"), ("MATIC", "polygon"), ("NEWNET", "newnet")],
)  # fmt: skip
def test_default_chain_names_cover_the_main_networks(network: str, chain: str) -> None:
    assert funds_event("withdrawal", withdrawal(network=network), SETTINGS)["chain"] == chain


def test_configured_chain_names_override_the_defaults() -> None:
    settings = replace(SETTINGS, chain_names={"TRX": "tron-mainnet"})
    assert funds_event("withdrawal", withdrawal(), settings)["chain"] == "tron-mainnet"


def test_withdrawal_fee_and_completion_time() -> None:
    event = funds_event("withdrawal", withdrawal(), SETTINGS)
    assert (event["fee"], event["fee_asset"], event["amount"]) == ("1", "USDT", "51")
    assert event["completed_ts"] == "2021-04-13T12:50:02.000+00:00"
    assert funds_event("withdrawal", withdrawal(updated=1618318300123), SETTINGS)["completed_ts"] == (
        "2021-04-13T12:51:40.123+00:00"
    )
    odd = funds_event("withdrawal", withdrawal(updated=1618318000000), SETTINGS)  # "completed" before the request
    assert "completed_ts" not in odd and odd["completed_ts_before_ts"] == "2021-04-13T12:46:40.000+00:00"
    assert event_from_dict(odd).extra == {"completed_ts_before_ts": "2021-04-13T12:46:40.000+00:00"}
    bare = funds_event("withdrawal", withdrawal(fee=None, info={}), SETTINGS)
    assert "fee" not in bare and "completed_ts" not in bare  # unknown is left out, never invented as 0


def test_a_fee_without_its_currency_is_an_error_not_a_guess() -> None:
    with pytest.raises(RecordError, match="withdrawal w1: the fee 1 has no currency"):
        funds_event("withdrawal", withdrawal(fee={"cost": "1", "currency": None}), SETTINGS)
    with pytest.raises(RecordError, match="completeTime"):
        funds_event("withdrawal", withdrawal(info={"completeTime": "yesterday"}), SETTINGS)


def test_trade_commission_in_a_third_asset() -> None:
    trade = {
        "id": "9", "symbol": "USDT/VND", "side": "buy", "amount": "10", "price": "26100", "timestamp": 1761012000000,
        "fee": {"cost": "0.00075", "currency": "BNB"}, "order": "1",
    }  # fmt: skip
    event = trade_event(trade, SETTINGS)
    assert (event["fee"], event["fee_asset"]) == ("0.00075", "BNB")
    parsed = event_from_dict(event)
    assert parsed.fee == Decimal("0.00075") and parsed.fee_asset == "BNB"  # type: ignore[attr-defined]


def test_the_contract_refuses_a_fee_without_asset_and_a_completion_before_the_request() -> None:
    base = funds_event("withdrawal", withdrawal(), SETTINGS)
    with pytest.raises(FieldError) as caught:
        event_from_dict({k: v for k, v in base.items() if k != "fee_asset"})
    assert caught.value.field == "fee_asset"
    with pytest.raises(FieldError) as caught:
        event_from_dict(base | {"completed_ts": "2021-04-13T12:00:00Z"})
    assert caught.value.field == "completed_ts" and "before ts" in caught.value.reason
    with pytest.raises(FieldError) as caught:
        event_from_dict(base | {"fee": "-1"})
    assert caught.value.field == "fee"
