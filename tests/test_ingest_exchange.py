"""The exchange connector: real ccxt (Binance client) against a local server replaying recorded responses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sandboxwatch.ingest.checkpoint import Checkpoint, CheckpointError
from sandboxwatch.ingest.event_sink import MemorySink
from sandboxwatch.ingest.exchange_connector import ExchangeConnector
from sandboxwatch.ingest.retry import Backoff, ConnectorError
from sandboxwatch.ingest.settings import ExchangeSettings, Market
from sandboxwatch.rules_engine.event_parser import event_from_dict
from sandboxwatch.rules_engine.timestamps import parse_timestamp
from tests.exchange_replay import ExchangeReplay

PARTICIPANT = "alphatrue-basal-pay"
# The replayed venue's completed trades: 12 USDT/VND over three pages of 5 and one USDC/VND at first, five more
# USDT/VND once the replay moves to its second stage.
FIRST_TRADES = [*(f"binance:trade:USDT/VND:{n}" for n in range(7000, 7012)), "binance:trade:USDC/VND:500"]
LATER_TRADES = [f"binance:trade:USDT/VND:{n}" for n in range(7012, 7017)]


@pytest.fixture()
def replay() -> Iterator[ExchangeReplay]:
    with ExchangeReplay() as server:
        yield server


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_VENUE_KEY", "replay-key")
    monkeypatch.setenv("TEST_VENUE_SECRET", "replay-secret")


def settings_for(replay: ExchangeReplay, **changes: Any) -> ExchangeSettings:
    settings = ExchangeSettings(
        participant=PARTICIPANT,
        exchange="binance",
        symbols=("USDT/VND", "USDC/VND"),
        account="C-000001",
        account_field=None,
        site="DN-SP2",
        api_key_env="TEST_VENUE_KEY",
        secret_env="TEST_VENUE_SECRET",
        api_base_url=replay.url,
        deposits=True,
        withdrawals=True,
        fiat_assets=frozenset({"VND"}),
        chain_names={"ERC20": "ethereum"},
        start=parse_timestamp("2025-10-21T00:00:00+07:00"),
        poll_interval_s=0.0,
        timeout_s=2.0,
        page_limit=5,
        reference_markets=(Market("binance", "USDT/VND", replay.url),),
    )
    return replace(settings, **changes)


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def connector(replay: ExchangeReplay, tmp_path: Path, sink: MemorySink, **changes: Any) -> ExchangeConnector:
    sleeps = changes.pop("sleep", Sleeps())
    backoff = changes.pop("backoff", Backoff(attempts=4, first_delay_s=0.01))
    return ExchangeConnector(
        settings_for(replay, **changes), sink, Checkpoint(tmp_path / "exchange.json"), backoff, sleep=sleeps
    )


def ids(sink: MemorySink, kind: str | None = None) -> list[str]:
    return [e["event_id"] for e in sink.events if kind is None or e["type"] == kind]


def test_first_poll_publishes_completed_records_as_canonical_events(replay: ExchangeReplay, tmp_path: Path) -> None:
    sink = MemorySink()
    connector(replay, tmp_path, sink).poll_once()
    assert ids(sink, "trade") == FIRST_TRADES
    assert ids(sink, "price") == ["price:binance:USDT/VND:1761012060000"]
    assert ids(sink, "withdrawal") == ["binance:withdrawal:b6ae22b3aa844210a7041aee7589627c"]  # others pending
    big = next(e for e in sink.events if e["event_id"] == "binance:trade:USDT/VND:7005")
    assert big | {"ts": None} == {
        "event_id": "binance:trade:USDT/VND:7005", "type": "trade", "participant": PARTICIPANT, "ts": None,
        "site": "DN-SP2", "account": "C-000001", "side": "buy", "base": "USDT", "quote": "VND",
        "quantity": "9000", "price": "26110", "order": "91005", "fee": "0", "fee_asset": "VND",
    }  # fmt: skip
    assert parse_timestamp(big["ts"]) == parse_timestamp("2025-10-21T02:05:00Z")
    # Every published event is a valid canonical event.
    for event in sink.events:
        if event["type"] != "ingest_error":
            event_from_dict(event)
    withdrawal = next(e for e in sink.events if e["type"] == "withdrawal")
    assert withdrawal["rail"] == "onchain" and withdrawal["chain"] == "ethereum"
    assert withdrawal["address"] == "0x94df8b352de7f46f64b01d3666bf6e936e44ce60" and withdrawal["amount"] == "900"
    # The network fee on top of the amount, and when it completed (Binance's completeTime), not just applyTime.
    assert (withdrawal["fee"], withdrawal["fee_asset"]) == ("1", "USDT")
    assert parse_timestamp(withdrawal["completed_ts"]) == parse_timestamp("2025-10-21T02:09:41Z")
    assert parse_timestamp(withdrawal["ts"]) == parse_timestamp("2025-10-21T02:05:00Z")
    parsed = event_from_dict(withdrawal)
    assert parsed.fee == Decimal("1") and parsed.completed_ts == parse_timestamp("2025-10-21T02:09:41Z")  # type: ignore[attr-defined]


def test_deposit_without_the_customers_address_is_reported_not_invented(replay: ExchangeReplay, tmp_path: Path) -> None:
    sink = MemorySink()
    connector(replay, tmp_path, sink).poll_once()
    errors = [e for e in sink.events if e["type"] == "ingest_error"]
    assert [e["raw"]["id"] for e in errors] == ["769800519366885376"]
    assert "sender address" in errors[0]["reason"] and errors[0]["participant"] == PARTICIPANT
    assert errors[0]["origin"] == "binance deposits"


def test_restart_neither_skips_nor_duplicates(replay: ExchangeReplay, tmp_path: Path) -> None:
    one_process = MemorySink()
    with ExchangeReplay() as other:
        single = connector(other, tmp_path / "single", one_process)
        single.poll_once()
        other.stage = 1
        single.poll_once()
    restarted = MemorySink()
    connector(replay, tmp_path, restarted).poll_once()
    replay.stage = 1
    connector(replay, tmp_path, restarted).poll_once()  # a new process reading the same checkpoint
    connector(replay, tmp_path, restarted).poll_once()  # nothing new: nothing published
    assert ids(restarted) == ids(one_process)
    assert len(set(ids(restarted))) == len(ids(restarted))
    # The pending deposit and withdrawal completed later and were published then, once.
    assert "binance:deposit:769800519366885390" not in ids(restarted)  # no sender address: an ingest error
    assert "binance:withdrawal:c1f0e2d3c4b5a69788796a5b4c3d2e1f" in ids(restarted, "withdrawal")
    assert "binance:withdrawal:d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4" not in ids(restarted)  # rejected: no money moved
    assert ids(restarted, "trade") == FIRST_TRADES + LATER_TRADES
    assert ids(restarted, "price") == ["price:binance:USDT/VND:1761012060000", "price:binance:USDT/VND:1761015600000"]


def test_crash_between_publish_and_checkpoint_republishes_the_same_ids(replay: ExchangeReplay, tmp_path: Path) -> None:
    class CrashingCheckpoint(Checkpoint):
        def save(self, data: dict[str, Any]) -> None:
            raise OSError("disk gone")

    first = MemorySink()
    crashing = ExchangeConnector(
        settings_for(replay), first, CrashingCheckpoint(tmp_path / "exchange.json"), sleep=Sleeps()
    )
    with pytest.raises(OSError):
        crashing.poll_once()
    again = MemorySink()
    connector(replay, tmp_path, again).poll_once()
    assert ids(first) and set(ids(first)) <= set(ids(again))  # at-least-once, with stable ids


def test_rate_limit_and_timeout_are_retried_with_backoff(replay: ExchangeReplay, tmp_path: Path) -> None:
    replay.fail("/api/v3/myTrades", status=429, times=2)
    replay.fail("/sapi/v1/capital/deposit/hisrec", delay_s=2.5)  # past the 2 s client timeout
    sleeps = Sleeps()
    sink = MemorySink()
    connector(replay, tmp_path, sink, sleep=sleeps, backoff=Backoff(attempts=4, first_delay_s=0.01)).poll_once()
    assert ids(sink, "trade") == FIRST_TRADES
    assert len(sleeps.waits) >= 3
    rate_limited, timed_out = sleeps.waits[:2], sleeps.waits[-1]
    assert rate_limited == [0.04, 0.08] and timed_out == 0.01  # rate limits wait longer


def test_bad_credentials_fail_at_once_with_the_venues_message(replay: ExchangeReplay, tmp_path: Path) -> None:
    body = json.dumps({"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
    replay.fail("/api/v3/myTrades", status=401, body=body, times=10)
    sleeps = Sleeps()
    with pytest.raises(ConnectorError) as caught:
        connector(replay, tmp_path, MemorySink(), sleep=sleeps).poll_once()
    assert not caught.value.transient and sleeps.waits == []
    assert "binance trades USDT/VND" in str(caught.value) and "Invalid API-key" in str(caught.value)


def test_outage_gives_up_after_the_attempts_and_keeps_the_position(replay: ExchangeReplay, tmp_path: Path) -> None:
    replay.fail("/api/v3/myTrades", status=503, times=100)
    sink = MemorySink()
    with pytest.raises(ConnectorError, match="gave up after 4 attempts") as caught:
        connector(replay, tmp_path, sink).poll_once()
    assert caught.value.transient and sink.events == []
    replay.faults.clear()
    connector(replay, tmp_path, sink).poll_once()
    assert ids(sink, "trade") == FIRST_TRADES


def test_missing_credentials_are_named(replay: ExchangeReplay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_VENUE_SECRET")
    with pytest.raises(ConnectorError, match="TEST_VENUE_SECRET"):
        connector(replay, tmp_path, MemorySink())


def test_account_from_a_field_of_the_venues_record(replay: ExchangeReplay, tmp_path: Path) -> None:
    sink = MemorySink()
    connector(replay, tmp_path, sink, account=None, account_field="info.orderId", symbols=("USDC/VND",)).poll_once()
    trade = next(e for e in sink.events if e["type"] == "trade")
    assert trade["account"] == "92000"
    sink = MemorySink()
    connector(replay, tmp_path / "b", sink, account=None, account_field="info.subAccount").poll_once()
    errors = [e for e in sink.events if e["type"] == "ingest_error" and "subAccount" in e["reason"]]
    assert len(errors) == 15  # 13 trades, a deposit, a withdrawal: each reported, none dropped silently


def test_unreadable_checkpoint_stops_rather_than_rereading_history(replay: ExchangeReplay, tmp_path: Path) -> None:
    (tmp_path / "exchange.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not JSON"):
        connector(replay, tmp_path, MemorySink())
