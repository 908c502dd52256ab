"""The connectors' lag metrics: now minus how far each stream has been read, and the source's last answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sandboxwatch.ingest.event_sink import MemorySink
from sandboxwatch.ingest.lag_metrics import registry_for
from sandboxwatch.ingest.retry import ConnectorError
from tests.exchange_replay import ExchangeReplay
from tests.test_ingest_history_paging import Clock, make, ms, trade


@pytest.fixture()
def replay() -> Iterator[ExchangeReplay]:
    with ExchangeReplay() as server:
        yield server


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_VENUE_KEY", "replay-key")
    monkeypatch.setenv("TEST_VENUE_SECRET", "replay-secret")


def samples(registry: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()  # type: ignore[arg-type]
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_lag_is_now_minus_read_to_per_stream(replay: ExchangeReplay, tmp_path: Path) -> None:
    clock = Clock("2025-10-22T00:00:00Z")
    sink = MemorySink()
    connector = make(replay, tmp_path, sink, clock)
    connector.poll_once()
    later = Clock("2025-10-22T00:10:00Z")
    got = samples(registry_for(connector, later))
    lag = {dict(k[1])["endpoint"]: v for k, v in got.items() if k[0] == "sandboxwatch_ingest_lag_seconds"}
    assert lag == {
        "trades:USDT/VND": 600.0,
        "trades:USDC/VND": 600.0,
        "deposit": 600.0,
        "withdrawal": 600.0,
        "price:binance:USDT/VND": 600.0,  # read at the poll, whatever the ticker's own time
    }
    assert got[("sandboxwatch_ingest_last_answer_timestamp_seconds", (("source", "binance"),))] == clock()
    kinds = {dict(k[1])["kind"]: v for k, v in got.items() if k[0] == "sandboxwatch_ingest_messages_total"}
    assert kinds == {"event": 15.0, "ingest_error": 1.0, "retraction": 0.0}


def test_a_stuck_stream_lags_while_the_venue_keeps_answering(replay: ExchangeReplay, tmp_path: Path) -> None:
    """The alert's condition: one cursor stops while every call to the venue succeeds."""
    from dataclasses import replace

    clock = Clock("2025-10-22T00:00:00Z")
    sink = MemorySink()
    make(replay, tmp_path, sink, clock, symbols=("USDT/VND",)).poll_once()
    at = ms("2025-10-22T00:00:30Z")
    replay.add("myTrades", [trade(8000 + i, at) for i in range(4)])
    clock.set("2025-10-22T01:00:00Z")
    connector = make(replay, tmp_path, sink, clock, symbols=("USDT/VND",), page_limit=3)
    connector.profile = replace(connector.profile, trade_from_id_param=None, trade_page_max=3)
    for _ in range(2):  # the first poll reads three of them; then the millisecond cannot be passed
        try:
            connector.poll_once()
        except ConnectorError:
            break
    got = samples(registry_for(connector, clock))
    key = ("sandboxwatch_ingest_lag_seconds", (("endpoint", "trades:USDT/VND"), ("source", "binance")))
    assert got[key] == 3600.0
    assert got[("sandboxwatch_ingest_last_answer_timestamp_seconds", (("source", "binance"),))] == clock()
