"""A second venue with other response shapes: real ccxt OKX client against the OKX-dialect replay server.

OKX answers a fills time range newest first, 100 at most (ccxt sends no limit with ``since``), so paging by
``since`` would read the newest page and skip everything older; the connector reads it window by window."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sandboxwatch.ingest.checkpoint import Checkpoint
from sandboxwatch.ingest.event_sink import MemorySink
from sandboxwatch.ingest.exchange_connector import ExchangeConnector
from sandboxwatch.ingest.retry import Backoff, ConnectorError
from sandboxwatch.ingest.settings import ExchangeSettings, Market
from sandboxwatch.rules_engine.event_parser import event_from_dict
from sandboxwatch.rules_engine.timestamps import parse_timestamp
from tests.okx_replay import OkxReplay
from tests.test_ingest_exchange import Sleeps
from tests.test_ingest_history_paging import Clock

PARTICIPANT = "alphatrue-basal-pay"


@pytest.fixture(params=["newest_first", "oldest_first"])
def replay(request: pytest.FixtureRequest) -> Iterator[OkxReplay]:
    with OkxReplay() as server:
        server.reverse_pages = request.param == "oldest_first"
        yield server


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_OKX_KEY", "replay-key")
    monkeypatch.setenv("TEST_OKX_SECRET", "replay-secret")
    monkeypatch.setenv("TEST_OKX_PASSPHRASE", "replay-passphrase")


def settings_for(replay: OkxReplay, **changes: Any) -> ExchangeSettings:
    settings = ExchangeSettings(
        participant=PARTICIPANT, exchange="okx", symbols=("USDT/VND", "USDC/VND"), account="C-000001",
        account_field=None, site="DN-SP2", api_key_env="TEST_OKX_KEY", secret_env="TEST_OKX_SECRET",
        api_base_url=replay.url, deposits=True, withdrawals=True, fiat_assets=frozenset({"VND"}), chain_names={},
        start=parse_timestamp("2025-10-21T00:00:00+07:00"), poll_interval_s=0.0, timeout_s=2.0, page_limit=100,
        reference_markets=(Market("okx", "USDT/VND", replay.url),), password_env="TEST_OKX_PASSPHRASE",
    )  # fmt: skip
    return replace(settings, **changes)


def make(replay: OkxReplay, tmp_path: Path, sink: MemorySink, clock: Clock, **changes: Any) -> ExchangeConnector:
    return ExchangeConnector(
        settings_for(replay, **changes),
        sink,
        Checkpoint(tmp_path / "okx.json"),
        Backoff(attempts=2, first_delay_s=0.01),
        sleep=Sleeps(),
        clock=clock,
    )


def ids(sink: MemorySink, kind: str) -> list[str]:
    return [e["event_id"] for e in sink.events if e["type"] == kind]


def test_every_fill_is_read_although_each_answer_holds_only_the_newest_100(replay: OkxReplay, tmp_path: Path) -> None:
    sink = MemorySink()
    make(replay, tmp_path, sink, Clock("2025-10-22T00:00:00Z")).poll_once()
    trades = ids(sink, "trade")
    expected = {f"okx:trade:USDT/VND:{2000 + i}" for i in range(130)} | {"okx:trade:USDC/VND:900"}
    assert set(trades) == expected and len(trades) == 131
    fills = [q for p, q in replay.queries if p == "/api/v5/trade/fills-history" and q["instId"] == "USDT-VND"]
    assert len(fills) >= 3  # the first window came back full (100) and was split
    for event in sink.events:
        if event["type"] != "ingest_error":
            event_from_dict(event)


def test_okx_shapes_become_the_same_canonical_events(replay: OkxReplay, tmp_path: Path) -> None:
    sink = MemorySink()
    make(replay, tmp_path, sink, Clock("2025-10-22T00:00:00Z")).poll_once()
    fill = next(e for e in sink.events if e["event_id"] == "okx:trade:USDT/VND:2001")
    assert fill | {"ts": None} == {
        "event_id": "okx:trade:USDT/VND:2001", "type": "trade", "participant": PARTICIPANT, "ts": None,
        "site": "DN-SP2", "account": "C-000001", "side": "buy", "base": "USDT", "quote": "VND",
        "quantity": "25.5", "price": "26105", "order": "681000000000000001", "fee": "665.68", "fee_asset": "VND",
    }  # fmt: skip
    assert parse_timestamp(fill["ts"]) == parse_timestamp("2025-10-21T02:00:20Z")
    rebate = next(e for e in sink.events if e["event_id"] == "okx:trade:USDC/VND:900")
    assert "fee" not in rebate and (rebate["fee_rebate"], rebate["fee_rebate_asset"]) == ("0.004", "USDC")
    [withdrawal] = [e for e in sink.events if e["type"] == "withdrawal"]  # the other is pending
    assert withdrawal["event_id"] == "okx:withdrawal:58001" and withdrawal["chain"] == "tron"  # USDT-TRC20
    assert (withdrawal["amount"], withdrawal["fee"], withdrawal["fee_asset"]) == ("700", "1", "USDT")
    assert withdrawal["address"] == "TYDmtuWL8bsyjvcauUTerpfYyVhFtBjqyo"
    [error] = [e for e in sink.events if e["type"] == "ingest_error"]  # on-chain deposit, no sender reported
    assert error["raw"]["id"] == "170000001" and "sender address" in error["reason"]
    assert ids(sink, "price") == ["price:okx:USDT/VND:1761012600000"]


def test_restart_with_completions_neither_skips_nor_duplicates(replay: OkxReplay, tmp_path: Path) -> None:
    clock = Clock("2025-10-21T02:50:00Z")  # after the recorded records, before the later ones happen
    sink = MemorySink()
    make(replay, tmp_path, sink, clock).poll_once()
    replay.stage = 1
    clock.set("2025-10-21T03:10:00Z")
    make(replay, tmp_path, sink, clock).poll_once()
    make(replay, tmp_path, sink, clock).poll_once()
    all_ids = [e["event_id"] for e in sink.events]
    assert len(all_ids) == len(set(all_ids))
    assert "okx:trade:USDT/VND:3000" in ids(sink, "trade") and len(ids(sink, "trade")) == 132
    assert ids(sink, "deposit") == ["okx:deposit:170000002"]  # the VND bank deposit, once it completed
    deposit = next(e for e in sink.events if e["type"] == "deposit")
    assert deposit["rail"] == "bank" and deposit["amount"] == "25000000"
    assert ids(sink, "withdrawal") == ["okx:withdrawal:58001", "okx:withdrawal:58002"]
    assert next(e for e in sink.events if e["event_id"] == "okx:withdrawal:58002")["chain"] == "ethereum"


def test_more_fills_in_one_millisecond_than_a_page_stops_loudly(replay: OkxReplay, tmp_path: Path) -> None:
    first = replay._data["fills"][0]
    crowd = [
        {**first, "tradeId": str(5000 + i), "billId": str(69 * 10**16 + i), "ts": "1761040800000"} for i in range(100)
    ]
    replay.add("fills", crowd)
    with pytest.raises(ConnectorError, match="fill the venue's page") as caught:
        make(replay, tmp_path, MemorySink(), Clock("2025-10-22T00:00:00Z"), symbols=("USDT/VND",)).poll_once()
    assert not caught.value.transient


def test_missing_passphrase_is_named(replay: OkxReplay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_OKX_PASSPHRASE")
    with pytest.raises(ConnectorError, match="TEST_OKX_PASSPHRASE"):
        make(replay, tmp_path, MemorySink(), Clock("2025-10-22T00:00:00Z"))


def test_the_shipped_okx_config_loads(tmp_path: Path) -> None:
    from sandboxwatch.ingest.settings import load_exchange_settings

    settings = load_exchange_settings(Path(__file__).parent.parent / "config" / "ingest" / "exchange-okx.yaml")
    assert (settings.exchange, settings.password_env, settings.page_limit) == (
        "okx",
        "SANDBOXWATCH_VENUE_PASSPHRASE",
        100,
    )
