"""Facts the engine keeps for all rules: customer accounts and reference prices, both in event time."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sandboxwatch.rules_engine.events import AccountEvent, PriceEvent
from sandboxwatch.rules_engine.fast_pickle import fast_pickle
from sandboxwatch.rules_engine.reference_lists import address_key
from sandboxwatch.rules_engine.rule_spec import LicenceHeader


@fast_pickle
@dataclass(slots=True, frozen=True)
class AccountState:
    kyc_status: str
    investor_class: str
    bank_account_verified: bool | None
    wallets: frozenset[str]
    # Event time of the account event this state comes from: a late, older one does not replace it.
    since: datetime

    @classmethod
    def from_event(cls, event: AccountEvent) -> AccountState:
        wallets = frozenset(address_key(w) for w in event.wallets) if event.wallets else frozenset()
        return cls(event.kyc_status, event.investor_class, event.bank_account_verified, wallets, event.ts)


_Point = tuple[datetime, Decimal]


def _point_time(point: _Point) -> datetime:
    return point[0]


class _Band:
    """The lowest and highest of one pair's prices from a set of sources over a trailing window whose ends
    only move forward: monotonic deques (``highs`` strictly falling, ``lows`` strictly rising, both in event
    time), so a price event costs O(1) amortised instead of a scan of the day's prices. A point no later point
    of at least (at most) its value can outlive is all the window's maximum (minimum) can be; ties keep the
    newest, whose value is equal (findings show a price through money.decimal_text, which normalises it).

    It answers only when it knows the answer: a window starting before one it already dropped, or ending
    before its newest point (an event judged late, behind later prices), is for the caller to scan."""

    __slots__ = ("highs", "lows", "newest", "start")

    def __init__(self) -> None:
        self.highs: deque[_Point] = deque()
        self.lows: deque[_Point] = deque()
        # Every point at or before ``start`` has left the window; ``newest``: the latest point taken.
        self.start: datetime | None = None
        self.newest: datetime | None = None

    def take(self, point: _Point) -> None:
        ts, value = point
        newest = self.newest
        if newest is None or ts >= newest:
            self.newest = ts
            highs, lows = self.highs, self.lows
            while highs and highs[-1][1] <= value:
                highs.pop()
            highs.append(point)
            while lows and lows[-1][1] >= value:
                lows.pop()
            lows.append(point)
            return
        start = self.start
        if start is not None and ts <= start:
            return  # already outside every window the band will answer for
        self.highs = _placed(self.highs, point, higher=True)
        self.lows = _placed(self.lows, point, higher=False)

    def window(self, start: datetime, end: datetime) -> tuple[Decimal | None, Decimal | None] | None:
        """(lowest, highest) of the points in (start, end], or None when the band cannot tell."""
        if (self.start is not None and start < self.start) or (self.newest is not None and end < self.newest):
            return None
        highs, lows = self.highs, self.lows
        while highs and highs[0][0] <= start:
            highs.popleft()
        while lows and lows[0][0] <= start:
            lows.popleft()
        self.start = start
        return (lows[0][1] if lows else None), (highs[0][1] if highs else None)


def _placed(kept: deque[_Point], point: _Point, *, higher: bool) -> deque[_Point]:
    """A monotonic deque with a point older than its newest one put in place (rare: a late price)."""
    ts, value = point
    entries = list(kept)
    at = bisect_left(entries, ts, key=_point_time)
    # Outlived by a kept point at least as extreme (the first at or after it is the most extreme of those).
    if at < len(entries) and (entries[at][1] >= value if higher else entries[at][1] <= value):
        return kept
    first = at
    while first and (entries[first - 1][1] <= value if higher else entries[first - 1][1] >= value):
        first -= 1
    return deque([*entries[:first], point, *entries[at:]])


class PriceBook:
    """Price history per (base, quote, source); lookups answer 'latest at or before t' even when a
    stream delivers prices slightly out of order.

    Snapshots pickle only the history (``__getstate__``): the bands are derived from it, rebuilt at the first
    question after a restore, so a snapshot of the book before the bands existed restores the same."""

    __slots__ = ("_bands", "_series")

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, str | None], list[_Point]] = {}
        # (base, quote) -> (sources, band) for each set of sources range_from was asked about.
        self._bands: dict[tuple[str, str], list[tuple[tuple[str, ...], _Band]]] = {}

    def __getstate__(self) -> tuple[None, dict[str, object]]:
        return None, {"_series": self._series}

    def __setstate__(self, state: tuple[None, dict[str, object]]) -> None:
        series = state[1]["_series"]
        assert isinstance(series, dict)
        self._series = series
        self._bands = {}

    def add(self, event: PriceEvent) -> None:
        point = (event.ts, event.price)
        for key in ((event.base, event.quote, event.source), (event.base, event.quote, None)):
            series = self._series.get(key)
            if series is None:
                self._series[key] = [point]
            elif series[-1][0] <= event.ts:
                series.append(point)
            else:
                insort(series, point, key=_point_time)
        bands = self._bands.get((event.base, event.quote))
        if bands:
            for sources, band in bands:
                if event.source in sources:
                    band.take(point)

    def _at(self, key: tuple[str, str, str | None], ts: datetime) -> _Point | None:
        series = self._series.get(key)
        if not series:
            return None
        last = series[-1]
        if last[0] <= ts:
            return last
        index = bisect_right(series, ts, key=_point_time)
        return series[index - 1] if index else None

    def latest(self, base: str, quote: str, ts: datetime) -> Decimal | None:
        point = self._at((base, quote, None), ts)
        return point[1] if point else None

    def latest_from(self, base: str, quote: str, ts: datetime, sources: tuple[str, ...]) -> Decimal | None:
        best: _Point | None = None
        for source in sources:
            point = self._at((base, quote, source), ts)
            if point is not None and (best is None or point[0] > best[0]):
                best = point
        return best[1] if best else None

    def range_from(
        self, base: str, quote: str, start: datetime, end: datetime, sources: tuple[str, ...]
    ) -> tuple[Decimal | None, Decimal | None]:
        """The lowest and highest price of the pair from ``sources`` in (start, end]: the band a trusted
        price is held to (reference_prices.max_step), so a walk of small steps cannot carry it away. Asked
        at every price event with windows moving forward: a band answers those; any other is scanned."""
        bands = self._bands.setdefault((base, quote), [])
        band = next((kept for chosen, kept in bands if chosen == sources), None)
        if band is None:
            band = _Band()
            points = [
                point for source in sources for point in self._series.get((base, quote, source), ()) if point[0] > start
            ]
            points.sort(key=_point_time)
            for point in points:
                band.take(point)
            band.start = start
            bands.append((sources, band))
        answer = band.window(start, end)
        return answer if answer is not None else self.scan_range(base, quote, start, end, sources)

    def scan_range(
        self, base: str, quote: str, start: datetime, end: datetime, sources: tuple[str, ...]
    ) -> tuple[Decimal | None, Decimal | None]:
        """``range_from`` by reading every price of the window: for windows the band cannot answer, and the
        reference the band is tested against."""
        low: Decimal | None = None
        high: Decimal | None = None
        for source in sources:
            series = self._series.get((base, quote, source))
            if not series:
                continue
            first = bisect_right(series, start, key=_point_time)
            last = bisect_right(series, end, key=_point_time)
            for _, value in series[first:last]:
                if low is None or value < low:
                    low = value
                if high is None or value > high:
                    high = value
        return low, high


@dataclass(slots=True)
class Facts:
    """Shared, read-only for rules; ``value`` is the current event's value in the reporting currency
    (None when it is not value-bearing or cannot be valued)."""

    header: LicenceHeader
    accounts: dict[str, AccountState] = field(default_factory=dict)
    prices: PriceBook = field(default_factory=PriceBook)
    value: Decimal | None = None
