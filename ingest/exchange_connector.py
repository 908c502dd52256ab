"""Polls the pilot venue (and reference markets) through ccxt and publishes canonical events.

Position is a per-stream cursor: the newest timestamp published plus the ids already published at that
exact millisecond, because venues answer ``since`` inclusively and several trades share a millisecond.
Deposits and withdrawals become events only once completed; pending ones are remembered in the
checkpoint and the next poll reads again from the oldest of them, so a deposit that completes hours
after it appeared is neither skipped nor published twice."""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ingest.checkpoint import Checkpoint
from ingest.event_sink import EventSink
from ingest.exchange_events import (
    DONE,
    PENDING,
    RecordError,
    funds_event,
    ingest_error,
    price_event,
    trade_event,
)
from ingest.retry import Backoff, ConnectorError, call_with_backoff, poll_forever
from ingest.settings import ExchangeSettings, Market

log = logging.getLogger(__name__)
Record = dict[str, Any]


@dataclass(slots=True)
class Cursor:
    since: int
    ids: set[str] = field(default_factory=set)
    pending: dict[str, int] = field(default_factory=dict)

    @classmethod
    def restore(cls, raw: dict[str, Any] | None, start_ms: int) -> Cursor:
        if not raw:
            return cls(start_ms)
        return cls(int(raw["since"]), set(raw.get("ids", [])), {k: int(v) for k, v in raw.get("pending", {}).items()})

    def dump(self) -> dict[str, Any]:
        return {"since": self.since, "ids": sorted(self.ids), "pending": dict(sorted(self.pending.items()))}

    @property
    def read_from(self) -> int:
        return min([self.since, *self.pending.values()])

    def is_new(self, record_id: str, ts: int) -> bool:
        return ts > self.since or (ts == self.since and record_id not in self.ids)

    def advance(self, record_id: str, ts: int) -> None:
        if ts > self.since:
            self.since, self.ids = ts, {record_id}
        elif ts == self.since:
            self.ids.add(record_id)


def classify_ccxt(exc: BaseException) -> str | None:
    import ccxt

    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return "rate_limit"
    if isinstance(exc, ccxt.NetworkError | ccxt.ExchangeNotAvailable | ccxt.OnMaintenance):
        return "transient"
    return None


def make_exchange(
    exchange_id: str, settings: ExchangeSettings | None, api_base_url: str | None, timeout_s: float
) -> Any:
    """A ccxt client returning numbers as strings; ``api_base_url`` re-points every API host (a proxy,
    or the replay server the tests use) while keeping each endpoint's path."""
    import ccxt

    try:
        cls = getattr(ccxt, exchange_id)
    except AttributeError:
        raise ConnectorError(f"ccxt has no exchange {exchange_id!r}", transient=False) from None
    config: dict[str, Any] = {
        "enableRateLimit": True,
        "timeout": int(timeout_s * 1000),
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False},
    }
    if settings is not None:
        for key, env in (("apiKey", settings.api_key_env), ("secret", settings.secret_env)):
            if env:
                value = os.environ.get(env)
                if not value:
                    raise ConnectorError(f"environment variable {env} (exchange {key}) is not set", transient=False)
                config[key] = value
    exchange = cls(config)
    exchange.number = str
    if api_base_url:
        exchange.urls["api"] = _repoint(exchange.urls["api"], api_base_url.rstrip("/"))
    return exchange


def _repoint(urls: Any, base: str) -> Any:
    if isinstance(urls, dict):
        return {key: _repoint(value, base) for key, value in urls.items()}
    if isinstance(urls, str) and "://" in urls:
        return f"{base}/{urls.split('://', 1)[1]}"
    return urls


class ExchangeConnector:
    def __init__(
        self,
        settings: ExchangeSettings,
        sink: EventSink,
        checkpoint: Checkpoint,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.checkpoint = checkpoint
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self.venue = make_exchange(settings.exchange, settings, settings.api_base_url, settings.timeout_s)
        self.markets = {
            market: make_exchange(market.exchange, None, market.api_base_url, settings.timeout_s)
            for market in settings.reference_markets
        }
        self.state = checkpoint.load()
        self.published = 0
        self.rejected = 0

    def _call(self, what: str, operation: Callable[[], Any]) -> Any:
        return call_with_backoff(operation, what, classify_ccxt, self.backoff, self.sleep)

    def _cursor(self, key: str) -> Cursor:
        start_ms = int(self.settings.start.timestamp() * 1000)
        return Cursor.restore(self.state.get(key), start_ms)

    def _commit(self, events: Sequence[dict[str, Any]], key: str, value: Any) -> None:
        """Publish, then checkpoint: never the other way round, or a crash would skip events."""
        if events:
            self.sink.publish(events)
            self.published += len(events)
        self.state[key] = value
        self.checkpoint.save(self.state)

    def poll_once(self) -> int:
        """One pass over every stream; returns how many events were published."""
        before = self.published
        self._call(f"{self.settings.exchange} load_markets", self.venue.load_markets)
        for symbol in self.settings.symbols:
            self._poll_trades(symbol)
        if self.settings.deposits:
            self._poll_funds("deposit", self.venue.fetch_deposits)
        if self.settings.withdrawals:
            self._poll_funds("withdrawal", self.venue.fetch_withdrawals)
        for market, client in self.markets.items():
            self._poll_price(market, client)
        return self.published - before

    def _convert(
        self, records: Iterable[Record], convert: Callable[[Record], dict[str, Any]], origin: str
    ) -> list[dict[str, Any]]:
        events = []
        for record in records:
            try:
                events.append(convert(record))
            except RecordError as exc:
                self.rejected += 1
                log.error("%s: %s", origin, exc)
                raw = {k: v for k, v in record.items() if k != "info"} | {"info": record.get("info")}
                events.append(ingest_error(self.settings.participant, origin, None, str(exc), raw))
        return events

    def _poll_trades(self, symbol: str) -> None:
        key = f"trades:{symbol}"
        origin = f"{self.settings.exchange} trades {symbol}"
        limit = self.settings.page_limit
        fetch = self.venue.fetch_my_trades
        while True:
            cursor = self._cursor(key)
            page: list[Record] = self._call(origin, functools.partial(fetch, symbol, since=cursor.since, limit=limit))
            fresh = sorted(
                (t for t in page if cursor.is_new(str(t.get("id")), int(t.get("timestamp") or 0))),
                key=lambda t: (int(t.get("timestamp") or 0), str(t.get("id"))),
            )
            for trade in fresh:
                cursor.advance(str(trade.get("id")), int(trade.get("timestamp") or 0))
            events = self._convert(fresh, lambda t: trade_event(t, self.settings), origin)
            self._commit(events, key, cursor.dump())
            if len(page) < limit or not fresh:
                return

    def _poll_funds(self, kind: str, fetch: Callable[..., list[Record]]) -> None:
        origin = f"{self.settings.exchange} {kind}s"
        cursor = self._cursor(kind)
        records: list[Record] = self._call(origin, lambda: fetch(since=cursor.read_from))
        done = []
        for tx in sorted(records, key=lambda r: (int(r.get("timestamp") or 0), str(r.get("id")))):
            tx_id, ts, status = str(tx.get("id")), int(tx.get("timestamp") or 0), tx.get("status")
            was_pending = tx_id in cursor.pending
            if not was_pending and not cursor.is_new(tx_id, ts):
                continue
            if status == PENDING:
                cursor.pending[tx_id] = ts
                continue
            cursor.pending.pop(tx_id, None)
            cursor.advance(tx_id, ts)  # also when it was pending: a later poll must not take it for new
            if status == DONE:
                done.append(tx)
            else:
                log.info("%s %s ended %s: no money moved, no event", origin, tx_id, status)
        events = self._convert(done, lambda tx: funds_event(kind, tx, self.settings), origin)
        self._commit(events, kind, cursor.dump())

    def _poll_price(self, market: Market, client: Any) -> None:
        key = f"price:{market.exchange}:{market.symbol}"
        origin = f"{market.exchange} ticker {market.symbol}"
        self._call(f"{market.exchange} load_markets", client.load_markets)
        ticker: Record = self._call(origin, lambda: client.fetch_ticker(market.symbol))
        last = int(self.state.get(key, 0))
        if int(ticker.get("timestamp") or 0) <= last:
            return
        events = self._convert([ticker], lambda t: price_event(t, market.exchange, self.settings.participant), origin)
        self._commit(events, key, int(ticker.get("timestamp") or 0))

    def run(self, once: bool = False, stop: Callable[[], bool] = lambda: False) -> None:
        def poll() -> str:
            count = self.poll_once()
            return f"published {count} events ({self.rejected} rejected records so far)"

        poll_forever(poll, self.settings.poll_interval_s, self.sleep, once, stop)
