"""A single transaction may not exceed the per-transaction cap (valued in the reporting currency)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.events import Event, account_of
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamReader
from sandboxwatch.rules_engine.money import decimal_text
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind
from sandboxwatch.rules_engine.valuation import counted_value, fees_param

if TYPE_CHECKING:
    from sandboxwatch.simulator.day_builder import Injection


DEFAULT_TYPES = ("trade", "deposit", "withdrawal")


@dataclass(frozen=True, slots=True)
class Params:
    max: Decimal
    applies_to: frozenset[str]
    fees: bool = False  # count the venue's fee in the value (licence parameter fees: include)


def parse(reader: ParamReader) -> Params:
    return Params(reader.req_decimal("max"), reader.event_types("applies_to", DEFAULT_TYPES), fees_param(reader))


def check(rule: RuleSpec, event: Event, facts: Facts, state: None) -> Findings:
    params: Params = rule.params
    # The gross value is facts.value; counted_value (a call per event) only when fees are counted.
    value = counted_value(event, facts, True) if params.fees else facts.value
    if value is None or value <= params.max:
        return None
    return [
        rule.finding(
            subject=account_of(event) or event.participant,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            observed=value,
            limit=params.max,
            message=f"{event.type} {event.event_id} is worth {decimal_text(value)} "
            f"{facts.header.reporting_currency}, above the cap of {decimal_text(params.max)}.",
        )
    ]


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    t = sim.t
    name, _ = sim.bad_account("max_transaction_value", t)
    value = rule.params.max + 1000
    row = builder.bank("deposit", t + timedelta(minutes=5), name, value)
    sim.report_if_large(row, value)
    sim.add(
        "max_transaction_value",
        "a deposit just above the per-transaction cap",
        [row],
        sim.value_rules_hit(value),
    )


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = (
    "A single transaction above the licence cap: obtain the participant's explanation and check whether "
    "limits are enforced in its order system."
)

KIND = RuleKind(
    "max_transaction_value",
    parse,
    lambda p: p.applies_to,
    check,
    valued=True,
    runbook=RUNBOOK,
    inject=inject,
)
