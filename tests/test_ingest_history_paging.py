"""History that always reaches now: windowed deposit/withdrawal history across long quiet spells, trade
paging by id and by time through full pages at one millisecond, in both response orders (real ccxt Binance
client against the replay server, which enforces Binance's 90-day span, 1000-record and fromId rules)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sandboxwatch.ingest.checkpoint import Checkpoint
from sandboxwatch.ingest.event_sink import MemorySink
from sandboxwatch.ingest.exchange_connector import RESCAN_MS, ExchangeConnector
from sandboxwatch.ingest.retry import Backoff, ConnectorError
from sandboxwatch.ingest.settings import SettingsError, load_exchange_settings
from sandboxwatch.ingest.venue_profiles import DAY_MS
from sandboxwatch.rules_engine.timestamps import parse_timestamp
from tests.exchange_replay import ExchangeReplay
from tests.test_ingest_exchange import Sleeps, settings_for

DEPOSITS = "/sapi/v1/capital/deposit/hisrec"
WITHDRAWALS = "/sapi/v1/capital/withdraw/history"
TRADES = "/api/v3/myTrades"


@pytest.fixture(params=["oldest_first", "newest_first"])
def replay(request: pytest.FixtureRequest) -> Iterator[ExchangeReplay]:
    with ExchangeReplay() as server:
        server.reverse_pages = request.param == "newest_first"
        yield server


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_VENUE_KEY", "replay-key")
    monkeypatch.setenv("TEST_VENUE_SECRET", "replay-secret")


class Clock:
    def __init__(self, at: str) -> None:
        self.now = parse_timestamp(at).timestamp()

    def set(self, at: str) -> None:
        self.now = parse_timestamp(at).timestamp()

    def __call__(self) -> float:
        return self.now


def ms(at: str) -> int:
    return int(parse_timestamp(at).timestamp() * 1000)


def make(replay: ExchangeReplay, tmp_path: Path, sink: MemorySink, clock: Clock, **changes: Any) -> ExchangeConnector:
    profile = changes.pop("profile", None)
    connector = ExchangeConnector(
        settings_for(replay, **changes),
        sink,
        Checkpoint(tmp_path / "exchange.json"),
        Backoff(attempts=2, first_delay_s=0.01),
        sleep=Sleeps(),
        clock=clock,
    )
    if profile is not None:
        connector.profile = profile
    return connector


def ids(sink: MemorySink, kind: str) -> list[str]:
    return [e["event_id"] for e in sink.events if e["type"] == kind]


def windows(replay: ExchangeReplay, path: str) -> list[tuple[int, int]]:
    return [(int(q["startTime"]), int(q["endTime"])) for p, q in replay.queries if p == path]


def withdrawal(tx_id: str, apply_time: str, amount: str = "50.00000000") -> dict[str, Any]:
    return {
        "id": tx_id, "amount": amount, "transactionFee": "1", "coin": "USDT", "status": 6,
        "address": "0x94df8b352de7f46f64b01d3666bf6e936e44ce60", "txId": "0x" + tx_id.rjust(64, "0")[-64:],
        "applyTime": apply_time, "network": "ETH", "transferType": 0, "info": "", "confirmNo": 12,
        "walletType": 0, "txKey": "", "completeTime": apply_time,
    }  # fmt: skip


def trade(trade_id: int, at_ms: int, symbol: str = "USDTVND") -> dict[str, Any]:
    return {
        "symbol": symbol, "id": trade_id, "orderId": 95000 + trade_id, "orderListId": -1, "price": "26100.00",
        "qty": "10.00", "quoteQty": "261000.00", "commission": "0.01", "commissionAsset": "USDT", "time": at_ms,
        "isBuyer": True, "isMaker": False, "isBestMatch": True,
    }  # fmt: skip


def test_history_from_a_start_two_quarters_back_is_walked_window_by_window(
    replay: ExchangeReplay, tmp_path: Path
) -> None:
    """The shipped config's situation: start long before the first record. Before, the first 90-day window
    was empty and the cursor never moved, so the October withdrawal was never read."""
    clock = Clock("2025-10-22T00:00:00Z")
    sink = MemorySink()
    make(replay, tmp_path, sink, clock, start=parse_timestamp("2025-04-01T00:00:00Z")).poll_once()
    assert ids(sink, "withdrawal") == ["binance:withdrawal:b6ae22b3aa844210a7041aee7589627c"]
    spans = windows(replay, WITHDRAWALS)
    assert spans[0][0] == ms("2025-04-01T00:00:00Z") and spans[-1][1] == ms("2025-10-22T00:00:00Z")
    assert len(spans) == 3 and all(end - start < 90 * DAY_MS for start, end in spans)
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(spans))  # contiguous, no gap
    state = json.loads((tmp_path / "exchange.json").read_text())
    assert state["withdrawal"]["read_to"] == ms("2025-10-22T00:00:00Z")
    assert state["deposit"]["read_to"] == ms("2025-10-22T00:00:00Z")


def test_a_quiet_quarter_does_not_blind_the_connector(replay: ExchangeReplay, tmp_path: Path) -> None:
    replay.stage = 1  # nothing left pending (a pending record is re-read from its own time on, by design)
    clock = Clock("2025-10-22T00:00:00Z")
    sink = MemorySink()
    make(replay, tmp_path, sink, clock).poll_once()
    first = ids(sink, "withdrawal")
    # Four months without a deposit or withdrawal: each poll walks on, and reads only from where it was.
    for day in ("2025-12-01", "2026-01-15", "2026-02-27"):
        clock.set(f"{day}T00:00:00Z")
        replay.queries.clear()
        make(replay, tmp_path, sink, clock).poll_once()
        assert ids(sink, "withdrawal") == first
        assert windows(replay, WITHDRAWALS)[-1][1] == ms(f"{day}T00:00:00Z")
    replay.add("withdrawals", [withdrawal("f00d0001", "2026-03-01 09:30:00")])
    clock.set("2026-03-01T10:00:00Z")
    replay.queries.clear()
    make(replay, tmp_path, sink, clock).poll_once()
    assert ids(sink, "withdrawal") == [*first, "binance:withdrawal:f00d0001"]
    # A steady poll re-reads only the last hour, in one request.
    assert windows(replay, WITHDRAWALS) == [(ms("2026-02-27T00:00:00Z") - RESCAN_MS, ms("2026-03-01T10:00:00Z"))]


def test_window_progress_is_persisted_so_a_failure_resumes_where_it_stopped(
    replay: ExchangeReplay, tmp_path: Path
) -> None:
    clock = Clock("2025-10-22T00:00:00Z")
    start = parse_timestamp("2025-01-01T00:00:00Z")
    sink = MemorySink()
    connector = make(replay, tmp_path, sink, clock, start=start, deposits=False)
    original = connector.venue.fetch_withdrawals
    calls: list[int] = []

    def fails_on_third_window(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("connection reset")  # classified permanent: the poll stops here
        return original(*args, **kwargs)

    connector.venue.fetch_withdrawals = fails_on_third_window
    with pytest.raises(ConnectorError):
        connector.poll_once()
    done = windows(replay, WITHDRAWALS)
    assert len(done) == 2
    state = json.loads((tmp_path / "exchange.json").read_text())
    assert state["withdrawal"]["read_to"] == done[1][1]  # two empty windows, remembered
    replay.queries.clear()
    make(replay, tmp_path, sink, clock, start=start, deposits=False).poll_once()
    resumed = windows(replay, WITHDRAWALS)
    assert resumed[0][0] == done[1][1] - RESCAN_MS
    assert ids(sink, "withdrawal") == ["binance:withdrawal:b6ae22b3aa844210a7041aee7589627c"]


def test_a_window_fuller_than_the_venues_page_is_split_not_truncated(replay: ExchangeReplay, tmp_path: Path) -> None:
    """1005 withdrawals in one window: Binance returns only the newest 1000, so the window is halved."""
    many = [
        withdrawal(f"bulk{i:05d}", f"2025-10-21 {10 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}")
        for i in range(1005)
    ]
    replay.add("withdrawals", many)
    sink = MemorySink()
    make(replay, tmp_path, sink, Clock("2025-10-22T00:00:00Z"), deposits=False, symbols=()).poll_once()
    got = ids(sink, "withdrawal")
    assert len(got) == 1006 and len(set(got)) == 1006
    assert {f"binance:withdrawal:bulk{i:05d}" for i in (0, 500, 1004)} <= set(got)


def test_trades_are_paged_by_trade_id_through_a_full_page_at_one_millisecond(
    replay: ExchangeReplay, tmp_path: Path
) -> None:
    at = ms("2025-10-21T05:00:00Z")
    replay.add("myTrades", [trade(8000 + i, at) for i in range(7)])
    sink = MemorySink()
    connector = make(replay, tmp_path, sink, Clock("2025-10-22T00:00:00Z"), page_limit=2, symbols=("USDT/VND",))
    connector.poll_once()
    got = ids(sink, "trade")
    # The replay's 12 USDT/VND trades (7000-7011), then the 7 added at one millisecond, each once.
    assert got == [f"binance:trade:USDT/VND:{n}" for n in [*range(7000, 7012), *range(8000, 8007)]]
    queries = [q for p, q in replay.queries if p == TRADES]
    assert "startTime" in queries[0] and "fromId" not in queries[0]
    assert [int(q["fromId"]) for q in queries[1:]] == [7002, 7004, 7006, 7008, 7010, 7012, 8002, 8004, 8006]
    assert all(int(q["limit"]) == 2 for q in queries)
    # A later poll asks for what comes after the last id only.
    replay.queries.clear()
    make(replay, tmp_path, sink, Clock("2025-10-22T00:01:00Z"), page_limit=2, symbols=("USDT/VND",)).poll_once()
    assert [q["fromId"] for p, q in replay.queries if p == TRADES] == ["8007"]
    assert ids(sink, "trade") == got  # nothing published again


def test_time_paged_venue_gets_past_a_full_page_at_one_millisecond(replay: ExchangeReplay, tmp_path: Path) -> None:
    """A venue without trade ids to page from: a page of 3 full of already-published trades at the
    cursor's millisecond is asked again at the venue's largest page, and the rest are read."""
    at = ms("2025-10-21T05:00:00Z")
    replay.add("myTrades", [trade(8000 + i, at) for i in range(7)] + [trade(9000, at + 1)])
    sink = MemorySink()
    clock = Clock("2025-10-22T00:00:00Z")
    by_time = replace(make(replay, tmp_path, sink, clock).profile, trade_from_id_param=None)
    make(replay, tmp_path, sink, clock, page_limit=3, symbols=("USDT/VND",), profile=by_time).poll_once()
    got = ids(sink, "trade")
    assert got[-8:] == [f"binance:trade:USDT/VND:{8000 + i}" for i in range(7)] + ["binance:trade:USDT/VND:9000"]
    assert len(got) == 20 and len(set(got)) == 20
    assert any(q.get("limit") == "1000" for p, q in replay.queries if p == TRADES)


def test_time_paging_that_cannot_pass_a_millisecond_stops_loudly(replay: ExchangeReplay, tmp_path: Path) -> None:
    at = ms("2025-10-21T05:00:00Z")
    replay.add("myTrades", [trade(8000 + i, at) for i in range(7)] + [trade(9000, at + 1)])
    sink = MemorySink()
    clock = Clock("2025-10-22T00:00:00Z")
    stuck = replace(make(replay, tmp_path, sink, clock).profile, trade_from_id_param=None, trade_page_max=3)
    with pytest.raises(ConnectorError, match="cannot get past this millisecond") as caught:
        make(replay, tmp_path, sink, clock, page_limit=3, symbols=("USDT/VND",), profile=stuck).poll_once()
    assert not caught.value.transient
    assert "binance:trade:USDT/VND:9000" not in ids(sink, "trade")
    state = json.loads((tmp_path / "exchange.json").read_text())
    assert state["trades:USDT/VND"]["since"] == at  # nothing past the stuck millisecond was marked read


def test_a_page_size_that_cannot_make_progress_is_refused_at_load(tmp_path: Path) -> None:
    shipped = (Path(__file__).parent.parent / "config" / "ingest" / "exchange.yaml").read_text()
    config = tmp_path / "exchange.yaml"
    config.write_text(shipped.replace("page_limit: 500", "page_limit: 1"))
    with pytest.raises(SettingsError, match=r"exchange\.page_limit: 1 cannot make progress"):
        load_exchange_settings(config)
    config.write_text(shipped.replace("page_limit: 500", "page_limit: 2"))
    assert load_exchange_settings(config).page_limit == 2


def test_read_to_never_passes_now(replay: ExchangeReplay, tmp_path: Path) -> None:
    clock = Clock("2025-10-22T00:00:00Z")
    connector = make(replay, tmp_path, MemorySink(), clock)
    connector.poll_once()
    now_ms = int(datetime(2025, 10, 22, tzinfo=UTC).timestamp() * 1000)
    positions = connector.positions()
    assert positions == {
        "trades:USDT/VND": now_ms,
        "trades:USDC/VND": now_ms,
        "deposit": now_ms,
        "withdrawal": now_ms,
        "price:binance:USDT/VND": now_ms,
    }
