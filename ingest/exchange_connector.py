"""Polls the pilot venue (and reference markets) through ccxt and publishes canonical events.

Position is a per-stream cursor: the newest timestamp published plus the ids already published at that
exact millisecond, because venues answer ``since`` inclusively and several trades share a millisecond.
Where the venue has trade ids to page from (Binance's ``fromId``), trades are paged by id instead, which
always advances. Deposit and withdrawal history is walked window by window (the venue's longest span) up to
now, and how far it was read is persisted even when a window was empty: a venue quiet for a quarter is
read again the moment it is active. Deposits and withdrawals become events only once completed; pending
ones are remembered in the checkpoint and the next poll reads again from the oldest of them, so a deposit
that completes hours after it appeared is neither skipped nor published twice.

Each stream also records ``read_to``: the wall-clock time up to which the venue has confirmed there is
nothing more. Its distance from now is the connector's lag (operational, so wall clock is right here)."""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sandboxwatch.ingest.checkpoint import Checkpoint
from sandboxwatch.ingest.event_sink import EventSink
from sandboxwatch.ingest.exchange_events import (
    DONE,
    PENDING,
    RecordError,
    funds_event,
    ingest_error,
    price_event,
    rfc3339_ms,
    trade_event,
)
from sandboxwatch.ingest.retry import Backoff, ConnectorError, call_with_backoff, poll_forever
from sandboxwatch.ingest.settings import ExchangeSettings, Market
from sandboxwatch.ingest.venue_profiles import profile_for

log = logging.getLogger(__name__)
Record = dict[str, Any]


# How much of already-scanned history each poll reads again, for records a venue shows a little late.
RESCAN_MS = 3_600_000


@dataclass(slots=True)
class Cursor:
    since: int
    ids: set[str] = field(default_factory=set)
    pending: dict[str, int] = field(default_factory=dict)
    # History known complete up to here (ms), even where it held no record: windows never re-walk the past.
    read_to: int | None = None
    # The venue's id of the newest trade published, for venues paged by trade id.
    last_id: int | None = None

    @classmethod
    def restore(cls, raw: dict[str, Any] | None, start_ms: int) -> Cursor:
        if not raw:
            return cls(start_ms)
        return cls(
            int(raw["since"]),
            set(raw.get("ids", [])),
            {k: int(v) for k, v in raw.get("pending", {}).items()},
            None if raw.get("read_to") is None else int(raw["read_to"]),
            None if raw.get("last_id") is None else int(raw["last_id"]),
        )

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "since": self.since,
            "ids": sorted(self.ids),
            "pending": dict(sorted(self.pending.items())),
        }
        if self.read_to is not None:
            out["read_to"] = self.read_to
        if self.last_id is not None:
            out["last_id"] = self.last_id
        return out

    @property
    def read_from(self) -> int:
        resume = self.since if self.read_to is None else max(self.since, self.read_to - RESCAN_MS)
        return min([resume, *self.pending.values()])

    def is_new(self, record_id: str, ts: int) -> bool:
        return ts > self.since or (ts == self.since and record_id not in self.ids)

    def advance(self, record_id: str, ts: int) -> None:
        if ts > self.since:
            self.since, self.ids = ts, {record_id}
        elif ts == self.since:
            self.ids.add(record_id)


def _ts(record: Record) -> int:
    return int(record.get("timestamp") or 0)


def _trade_number(record: Record) -> int | None:
    """The venue's trade id as a number, or None when it is not one (then trades are paged by time)."""
    value = record.get("id")
    try:
        return int(str(value))
    except ValueError:
        return None


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
        for key, env in (
            ("apiKey", settings.api_key_env),
            ("secret", settings.secret_env),
            ("password", settings.password_env),
        ):
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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.checkpoint = checkpoint
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self.clock = clock
        self.profile = profile_for(settings.exchange)
        self.venue = make_exchange(settings.exchange, settings, settings.api_base_url, settings.timeout_s)
        self.markets = {
            market: make_exchange(market.exchange, None, market.api_base_url, settings.timeout_s)
            for market in settings.reference_markets
        }
        self.state = checkpoint.load()
        self.published = 0  # every message, ingest errors included
        self.rejected = 0  # of which ingest errors
        self.retracted = 0  # a venue's history has no retractions; kept for one summary format
        # Wall-clock seconds of the venue's latest answer: a lagging cursor while this is fresh is a stuck
        # connector, not an unreachable venue.
        self.last_answer_s: float | None = None
        # When each reference ticker was last read: a ticker whose own time stands still (a quiet market)
        # is not a stuck connector, so its lag counts from the read.
        self._price_reads: dict[str, int] = {}

    @property
    def source(self) -> str:
        return self.settings.exchange

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _call(self, what: str, operation: Callable[[], Any]) -> Any:
        result = call_with_backoff(operation, what, classify_ccxt, self.backoff, self.sleep)
        self.last_answer_s = self.clock()
        return result

    def _cursor(self, key: str) -> Cursor:
        start_ms = int(self.settings.start.timestamp() * 1000)
        return Cursor.restore(self.state.get(key), start_ms)

    def positions(self) -> dict[str, int]:
        """Per stream, the time (ms) up to which the venue's history has been read completely."""
        out = {}
        for key, value in self.state.items():
            if isinstance(value, dict) and value.get("read_to") is not None:
                out[key] = int(value["read_to"])
        out.update(self._price_reads)
        return out

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
            if self.profile.trades_by_window:
                self._poll_trade_windows(symbol)
            else:
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

    def _trade_page(self, symbol: str, cursor: Cursor, limit: int, origin: str) -> list[Record]:
        fetch = self.venue.fetch_my_trades
        from_id = self.profile.trade_from_id_param
        if from_id and cursor.last_id is not None:
            call = functools.partial(fetch, symbol, None, limit, {from_id: cursor.last_id + 1})
        else:
            call = functools.partial(fetch, symbol, since=cursor.since, limit=limit)
        page: list[Record] = self._call(origin, call)
        return page

    def _poll_trades(self, symbol: str) -> None:
        """Page until the venue answers with less than a full page. By trade id, every page moves past the
        last id; by time, a full page holding only trades already published at the cursor's millisecond is
        asked again at the venue's largest page size, and if even that cannot get past the millisecond the
        connector stops loudly rather than skip trades or spin."""
        key = f"trades:{symbol}"
        origin = f"{self.settings.exchange} trades {symbol}"
        limit = self.settings.page_limit
        cursor = self._cursor(key)
        by_id = self.profile.trade_from_id_param is not None
        while True:
            asked_at = self._now_ms()
            page = self._trade_page(symbol, cursor, limit, origin)
            numbers = [_trade_number(t) for t in page]
            if by_id and cursor.last_id is not None:
                fresh = [t for t, n in zip(page, numbers, strict=True) if n is not None and n > cursor.last_id]
            else:
                fresh = [t for t in page if cursor.is_new(str(t.get("id")), _ts(t))]
            fresh.sort(key=lambda t: (_ts(t), str(t.get("id"))))
            full = len(page) >= limit
            if full and not fresh:
                if limit < self.profile.trade_page_max:
                    limit = self.profile.trade_page_max
                    continue
                raise ConnectorError(
                    f"{origin}: {len(page)} trades at {rfc3339_ms(cursor.since)} fill the largest page the venue "
                    "serves and were all published already; paging by time cannot get past this millisecond",
                    transient=False,
                )
            for trade in fresh:
                cursor.advance(str(trade.get("id")), _ts(trade))
            if by_id and all(n is not None for n in numbers) and numbers:
                cursor.last_id = max([n for n in numbers if n is not None] + [cursor.last_id or 0])
            if not full:
                cursor.read_to = asked_at
            events = self._convert(fresh, lambda t: trade_event(t, self.settings), origin)
            self._commit(events, key, cursor.dump())
            if not full:
                return
            limit = self.settings.page_limit

    def _walk(
        self,
        key: str,
        origin: str,
        fetch: Callable[[int, int], list[Record]],
        take: Callable[[Cursor, list[Record]], list[dict[str, Any]]],
        window: int | None,
        page_max: int,
    ) -> None:
        """Walk a stream's history from the cursor to now in windows the venue accepts, checkpointing after
        each window (empty ones too). A window that comes back as full as the venue's page is split, because
        the venue left records out of it (whichever end it cut); a one-millisecond window that is still full
        stops the connector, loudly."""
        cursor = self._cursor(key)
        now = self._now_ms()
        start = cursor.read_from
        span = window or (now - start + 1)
        while start <= now:
            end = min(start + span - 1, now)
            records = fetch(start, end)
            if len(records) >= page_max:
                if end == start:
                    raise ConnectorError(
                        f"{origin}: {len(records)} records at {rfc3339_ms(start)} fill the venue's page; "
                        "history cannot be read completely",
                        transient=False,
                    )
                span = max(1, (end - start + 1) // 2)
                continue
            events = take(cursor, records)
            cursor.read_to = end
            self._commit(events, key, cursor.dump())
            start = end + 1
            span = window or (now - start + 1)

    def _poll_funds(self, kind: str, fetch: Callable[..., list[Record]]) -> None:
        origin = f"{self.settings.exchange} {kind}s"
        page_max, end_param = self.profile.history_page_max, self.profile.history_end_param

        def window(start: int, end: int) -> list[Record]:
            records: list[Record] = self._call(
                origin, functools.partial(fetch, None, start, page_max, {end_param: end + self.profile.end_overlap_ms})
            )
            return records

        def take(cursor: Cursor, records: list[Record]) -> list[dict[str, Any]]:
            done = self._completed(kind, origin, cursor, records)
            return self._convert(done, lambda tx: funds_event(kind, tx, self.settings), origin)

        self._walk(kind, origin, window, take, self.profile.history_window_ms, page_max)

    def _poll_trade_windows(self, symbol: str) -> None:
        """For venues that answer a time range newest first with a fixed page (OKX): paging by ``since``
        would jump to the newest page and skip the trades before it, so trades are read like history."""
        key, origin = f"trades:{symbol}", f"{self.settings.exchange} trades {symbol}"
        page_max, end_param = self.profile.trade_page_max, self.profile.history_end_param

        def window(start: int, end: int) -> list[Record]:
            page: list[Record] = self._call(
                origin,
                functools.partial(
                    self.venue.fetch_my_trades, symbol, start, page_max, {end_param: end + self.profile.end_overlap_ms}
                ),
            )
            return page

        def take(cursor: Cursor, page: list[Record]) -> list[dict[str, Any]]:
            fresh = sorted(
                (t for t in page if cursor.is_new(str(t.get("id")), _ts(t))), key=lambda t: (_ts(t), str(t.get("id")))
            )
            for trade in fresh:
                cursor.advance(str(trade.get("id")), _ts(trade))
            return self._convert(fresh, lambda t: trade_event(t, self.settings), origin)

        self._walk(key, origin, window, take, self.profile.trade_window_ms, page_max)

    @staticmethod
    def _completed(kind: str, origin: str, cursor: Cursor, records: list[Record]) -> list[Record]:
        done = []
        for tx in sorted(records, key=lambda r: (_ts(r), str(r.get("id")))):
            tx_id, ts, status = str(tx.get("id")), _ts(tx), tx.get("status")
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
        return done

    def _poll_price(self, market: Market, client: Any) -> None:
        key = f"price:{market.exchange}:{market.symbol}"
        origin = f"{market.exchange} ticker {market.symbol}"
        self._call(f"{market.exchange} load_markets", client.load_markets)
        ticker: Record = self._call(origin, lambda: client.fetch_ticker(market.symbol))
        self._price_reads[key] = self._now_ms()
        last = int(self.state.get(key, 0))
        if _ts(ticker) <= last:
            return
        events = self._convert([ticker], lambda t: price_event(t, market.exchange, self.settings.participant), origin)
        self._commit(events, key, _ts(ticker))

    def run(self, once: bool = False, stop: Callable[[], bool] = lambda: False) -> None:
        def poll() -> str:
            count = self.poll_once()
            return f"published {count} events ({self.rejected} rejected records so far)"

        poll_forever(poll, self.settings.poll_interval_s, self.sleep, once, stop)
