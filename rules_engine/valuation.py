"""Values events in the licence's reporting currency, following the contract's valuation section.

Where no reference price exists at or before the event, the answer is None: the engine reports
``valuation_unavailable`` rather than guessing.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from rules_engine.events import Event, FundsEvent, TradeEvent, TransferEvent
from rules_engine.facts import PriceBook

_ONE = Decimal(1)


def rate(asset: str, currency: str, ts: datetime, prices: PriceBook) -> Decimal | None:
    if asset == currency:
        return _ONE
    return prices.latest(asset, currency, ts)


def value_of(event: Event, currency: str, prices: PriceBook) -> Decimal | None:
    if isinstance(event, TradeEvent):
        notional = event.quantity * event.price
        if event.quote == currency:
            return notional
        quote_rate = rate(event.quote, currency, event.ts, prices)
        if quote_rate is not None:
            return notional * quote_rate
        base_rate = rate(event.base, currency, event.ts, prices)
        return event.quantity * base_rate if base_rate is not None else None
    if isinstance(event, FundsEvent | TransferEvent):
        asset_rate = rate(event.asset, currency, event.ts, prices)
        return event.amount * asset_rate if asset_rate is not None else None
    return None
