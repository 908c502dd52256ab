"""Facts the engine keeps for all rules: customer accounts and reference prices, both in event time."""

from __future__ import annotations

from bisect import bisect_right, insort
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


class PriceBook:
    """Price history per (base, quote, source); lookups answer 'latest at or before t' even when a
    stream delivers prices slightly out of order."""

    __slots__ = ("_series",)

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, str | None], list[_Point]] = {}

    def add(self, event: PriceEvent) -> None:
        point = (event.ts, event.price)
        for key in ((event.base, event.quote, event.source), (event.base, event.quote, None)):
            series = self._series.get(key)
            if series is None:
                self._series[key] = [point]
            elif series[-1][0] <= event.ts:
                series.append(point)
            else:
                insort(series, point, key=lambda p: p[0])

    def _at(self, key: tuple[str, str, str | None], ts: datetime) -> _Point | None:
        series = self._series.get(key)
        if not series:
            return None
        last = series[-1]
        if last[0] <= ts:
            return last
        index = bisect_right(series, ts, key=lambda p: p[0])
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
        price is held to (reference_prices.max_step), so a walk of small steps cannot carry it away."""
        low: Decimal | None = None
        high: Decimal | None = None
        for source in sources:
            series = self._series.get((base, quote, source))
            if not series:
                continue
            first = bisect_right(series, start, key=lambda p: p[0])
            last = bisect_right(series, end, key=lambda p: p[0])
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
