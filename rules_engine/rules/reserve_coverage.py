"""Client assets must be fully held in custody: custody balance over client liabilities >= min_ratio."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.events import Event, ReserveEvent
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamReader
from sandboxwatch.rules_engine.money import ZERO, decimal_text, rounded
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed
from sandboxwatch.rules_engine.valuation import EXACT

if TYPE_CHECKING:
    from sandboxwatch.simulator.day_builder import Injection


@dataclass(frozen=True, slots=True)
class Params:
    min_ratio: Decimal


def parse(reader: ParamReader) -> Params:
    return Params(reader.req_decimal("min_ratio"))


# Latest required-over-held ratio per asset: how close custody is to falling short.
State = dict[str, Decimal]


def new_state(params: Params) -> State:
    return {}


def check(rule: RuleSpec, event: Event, facts: Facts, state: State) -> Findings:
    if not isinstance(event, ReserveEvent) or event.client_liabilities == ZERO:
        return None
    params: Params = rule.params
    required = EXACT.multiply(params.min_ratio, event.client_liabilities)
    state[event.asset] = required / event.custody_balance if event.custody_balance else Decimal("Infinity")
    if event.custody_balance >= required:
        return None
    ratio = event.custody_balance / event.client_liabilities
    return [
        rule.finding(
            subject=event.participant,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            observed=rounded(ratio, 6),
            limit=params.min_ratio,
            message=f"{event.asset} custody {decimal_text(event.custody_balance)} covers only "
            f"{decimal_text(rounded(ratio, 4))} of client liabilities "
            f"{decimal_text(event.client_liabilities)}.",
        )
    ]


def utilisation(rule: RuleSpec, state: State) -> Mapping[str, Decimal]:
    return {f"min_ratio:{asset}": rounded(r, 6) if r.is_finite() else r for asset, r in sorted(state.items())}


CENT = Decimal("0.01")


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    t = sim.t
    ratio = rule.params.min_ratio
    row = builder.emit(
        "reserve",
        t + timedelta(minutes=20, seconds=7),
        asset=builder.asset,
        custody_balance=decimal_text((Decimal(6_000_000) * ratio * Decimal("0.95")).quantize(CENT)),
        client_liabilities="6000000",
    )
    sim.add("reserve_coverage", "custody below client liabilities", [row])


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = (
    "Custody holdings do not cover client liabilities: call the participant's compliance officer now and "
    "require a reconciliation and top-up plan."
)

KIND = RuleKind(
    "reserve_coverage",
    parse,
    fixed("reserve"),
    check,
    new_state=new_state,
    utilisation=utilisation,
    runbook=RUNBOOK,
    inject=inject,
)
