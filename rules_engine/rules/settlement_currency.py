"""Fiat settlement must be in the permitted currency (VND for both Vietnamese pilots)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.events import Event, FundsEvent, TradeEvent
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamReader
from sandboxwatch.rules_engine.money import decimal_text
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed

if TYPE_CHECKING:
    from sandboxwatch.simulator.day_builder import Injection


@dataclass(frozen=True, slots=True)
class Params:
    currencies: frozenset[str]


def parse(reader: ParamReader) -> Params:
    currencies = reader.strings("currencies")
    assert currencies is not None
    return Params(frozenset(currencies))


def check(rule: RuleSpec, event: Event, facts: Facts, state: None) -> Findings:
    params: Params = rule.params
    if isinstance(event, TradeEvent):
        currency, account, what = event.quote, event.account, "is quoted in"
    elif isinstance(event, FundsEvent) and event.rail == "bank":
        currency, account, what = event.asset, event.account, "settles by bank in"
    else:
        return None
    if currency in params.currencies:
        return None
    return [
        rule.finding(
            subject=account,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            message=f"{event.type} {event.event_id} {what} {currency}; permitted settlement currencies are "
            f"{', '.join(sorted(params.currencies))}.",
        )
    ]


CENT = Decimal("0.01")


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    t = sim.t
    small = sim.small
    name, _ = sim.bad_account("settlement_currency", t)
    at = t + timedelta(minutes=5)
    usdt = (small / builder.reference(at)).quantize(CENT)
    row = builder.trade(at, name, small, quote="USD", price=Decimal(1), quantity=decimal_text(usdt))
    sim.add("settlement_currency", "a trade settled in USD", [row])


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = (
    "Settlement in a currency the licence does not permit: request the settlement records and confirm "
    "reversal or conversion."
)

KIND = RuleKind(
    "settlement_currency",
    parse,
    fixed("trade", "deposit", "withdrawal"),
    check,
    runbook=RUNBOOK,
    inject=inject,
)
