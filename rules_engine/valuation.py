"""Values events in the licence's reporting currency, following the contract's valuation section.

Where no reference price exists at or before the event, the answer is None: the engine reports
``valuation_unavailable`` rather than guessing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Context, Decimal

from sandboxwatch.rules_engine.events import Event, FundsEvent, TradeEvent, TransferEvent
from sandboxwatch.rules_engine.facts import Facts, PriceBook
from sandboxwatch.rules_engine.licence_params import ParamError, ParamReader
from sandboxwatch.rules_engine.plain_text import plain

_ONE = Decimal(1)
_ZERO = Decimal(0)
# Values and the sums and products rules make of them are exact. The events' decimals have at most 28
# significant digits (docs/events.md, Bounds), so a value (quantity x price x a rate) has at most 84, and a
# window's sum a few more; the default context keeps 28 and rounds the rest away, which put a trade worth a
# cap plus 1.2E-35 (2.23E-16 x 896860986547085201793721.9731 against 200000000) exactly on the cap, so not
# above it, and let a window's running total drift as events entered and left it. 200 digits hold them all.
EXACT = Context(prec=200)

# Events valued by their amount of one asset (a tuple: ``A | B`` in isinstance builds a union per call).
_AMOUNTS = (FundsEvent, TransferEvent)


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    total = _ZERO
    for value in values:
        total = EXACT.add(total, value)
    return total


def rate(asset: str, currency: str, ts: datetime, prices: PriceBook) -> Decimal | None:
    if asset == currency:
        return _ONE
    return prices.latest(asset, currency, ts)


def value_of(event: Event, currency: str, prices: PriceBook) -> Decimal | None:
    if isinstance(event, TradeEvent):
        notional = EXACT.multiply(event.quantity, event.price)
        if event.quote == currency:
            return notional
        quote_rate = rate(event.quote, currency, event.ts, prices)
        if quote_rate is not None:
            return EXACT.multiply(notional, quote_rate)
        base_rate = rate(event.base, currency, event.ts, prices)
        return EXACT.multiply(event.quantity, base_rate) if base_rate is not None else None
    if isinstance(event, _AMOUNTS):
        asset = event.asset
        if asset == currency:  # rate() inline: every deposit, withdrawal and transfer comes here
            return EXACT.multiply(event.amount, _ONE)
        asset_rate = prices.latest(asset, currency, event.ts)
        return EXACT.multiply(event.amount, asset_rate) if asset_rate is not None else None
    return None


FEES = ("exclude", "include")


def fees_param(reader: ParamReader) -> bool:
    """The ``fees`` parameter of a value-based rule: ``exclude`` (default: the gross value, quantity x price
    or the amount) or ``include`` (that plus the fee the venue charged, valued like any other amount)."""
    if not reader.has("fees"):
        return False
    choice = reader.text("fees")
    if choice not in FEES:
        raise ParamError("fees", f"must be one of {', '.join(FEES)}, not {plain(choice)}")
    return choice == "include"


def counted_value(event: Event, facts: Facts, fees: bool) -> Decimal | None:
    """The value a rule compares with its limit. With fees included but the fee's asset unpriced at the
    event's time, the gross value is used: a lower bound never hides a breach the gross value shows, and
    the missing price is already visible as the price gap it is."""
    value = facts.value
    if not fees or value is None:
        return value
    fee, asset = getattr(event, "fee", None), getattr(event, "fee_asset", None)
    if not fee or asset is None:
        return value
    fee_rate = rate(asset, facts.header.reporting_currency, event.ts, facts.prices)
    return value if fee_rate is None else EXACT.add(value, EXACT.multiply(fee, fee_rate))
