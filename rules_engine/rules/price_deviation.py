"""Fair pricing: trade prices must stay near the reference market price (same pair, listed sources)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.events import Event, TradeEvent
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamReader
from sandboxwatch.rules_engine.money import HUNDRED, decimal_text, rounded
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed
from sandboxwatch.rules_engine.valuation import EXACT

if TYPE_CHECKING:
    from sandboxwatch.simulator.day_builder import Injection


@dataclass(frozen=True, slots=True)
class Params:
    max_pct: Decimal
    sources: tuple[str, ...]


def parse(reader: ParamReader) -> Params:
    sources = reader.strings("sources")
    assert sources is not None
    return Params(reader.req_decimal("max_pct"), sources)


def check(rule: RuleSpec, event: Event, facts: Facts, state: None) -> Findings:
    if not isinstance(event, TradeEvent):
        return None
    params: Params = rule.params
    reference = facts.prices.latest_from(event.base, event.quote, event.ts, params.sources)
    if reference is None:
        return None
    # Compare without dividing, in the exact context: |p - ref| * 100 > max_pct * ref.
    gap = EXACT.multiply(EXACT.subtract(event.price, reference).copy_abs(), HUNDRED)
    if gap <= EXACT.multiply(params.max_pct, reference):
        return None
    deviation = abs(event.price - reference) * HUNDRED / reference
    return [
        rule.finding(
            subject=event.account,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            observed=rounded(deviation, 4),
            limit=params.max_pct,
            message=f"Trade {event.event_id} at {decimal_text(event.price)} {event.quote} deviates "
            f"{decimal_text(rounded(deviation, 2))}% from the reference {decimal_text(reference)}.",
        )
    ]


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    t = sim.t
    small = sim.small
    name, _ = sim.bad_account("price_deviation", t)
    at = t + timedelta(minutes=5)
    off = builder.reference(at) * (1 + (rule.params.max_pct + 2) / 100)
    row = builder.trade(at, name, small, price=off)
    sim.add("price_deviation", "a trade priced far from the reference market", [row])


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = (
    "Trades far from the reference market price: check for a pricing fault or abuse and ask the "
    "participant for its quote log."
)

KIND = RuleKind(
    "price_deviation",
    parse,
    fixed("trade"),
    check,
    runbook=RUNBOOK,
    inject=inject,
)
