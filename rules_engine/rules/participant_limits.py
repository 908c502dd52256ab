"""Participant-level conditions of the national pilot: charter capital and ownership structure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.events import Event, ParticipantEvent
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.licence_params import ParamError, ParamReader
from sandboxwatch.rules_engine.money import decimal_text, rounded
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed

if TYPE_CHECKING:
    from sandboxwatch.simulator.day_builder import Injection


@dataclass(frozen=True, slots=True)
class Params:
    min_charter_capital_vnd: Decimal | None
    max_foreign_ownership_pct: Decimal | None
    min_institutional_ownership_pct: Decimal | None


def parse(reader: ParamReader) -> Params:
    params = Params(
        reader.decimal("min_charter_capital_vnd", required=False),
        reader.decimal("max_foreign_ownership_pct", required=False, positive=False),
        reader.decimal("min_institutional_ownership_pct", required=False, positive=False),
    )
    if (
        params.min_charter_capital_vnd is None
        and params.max_foreign_ownership_pct is None
        and params.min_institutional_ownership_pct is None
    ):
        raise ParamError("min_charter_capital_vnd", "missing parameter (give at least one limit)")
    return params


# Latest use of each limit: observed over a maximum, or the minimum over observed.
State = dict[str, Decimal]


def new_state(params: Params) -> State:
    return {}


def _use(state: State, name: str, numerator: Decimal, denominator: Decimal) -> None:
    state[name] = numerator / denominator if denominator else Decimal("Infinity")


def check(rule: RuleSpec, event: Event, facts: Facts, state: State) -> Findings:
    if not isinstance(event, ParticipantEvent):
        return None
    params: Params = rule.params
    for name, observed, limit, is_max in (
        ("charter_capital_vnd", event.charter_capital_vnd, params.min_charter_capital_vnd, False),
        ("foreign_ownership_pct", event.foreign_ownership_pct, params.max_foreign_ownership_pct, True),
        (
            "institutional_ownership_pct",
            event.institutional_ownership_pct,
            params.min_institutional_ownership_pct,
            False,
        ),
    ):
        if observed is not None and limit is not None:
            if is_max:
                _use(state, name, observed, limit)
            else:
                _use(state, name, limit, observed)
    found: list[Finding] = []

    def breach(name: str, observed: Decimal, limit: Decimal, text: str) -> None:
        found.append(
            rule.finding(
                subject=event.participant,
                ts=event.ts,
                key=f"{event.event_id}:{name}",
                evidence=(event.event_id,),
                observed=observed,
                limit=limit,
                message=f"{text} ({decimal_text(observed)} against a limit of {decimal_text(limit)}).",
            )
        )

    capital, floor = event.charter_capital_vnd, params.min_charter_capital_vnd
    if capital is not None and floor is not None and capital < floor:
        breach("charter_capital_vnd", capital, floor, "Charter capital is below the required minimum")
    foreign, cap = event.foreign_ownership_pct, params.max_foreign_ownership_pct
    if foreign is not None and cap is not None and foreign > cap:
        breach("foreign_ownership_pct", foreign, cap, "Foreign ownership exceeds the permitted share")
    institutional, least = event.institutional_ownership_pct, params.min_institutional_ownership_pct
    if institutional is not None and least is not None and institutional < least:
        breach(
            "institutional_ownership_pct",
            institutional,
            least,
            "Institutional ownership is below the minimum",
        )
    return found or None


def utilisation(rule: RuleSpec, state: State) -> Mapping[str, Decimal]:
    return {name: rounded(ratio, 6) if ratio.is_finite() else ratio for name, ratio in state.items()}


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    t = sim.t
    params = rule.params
    facts: dict[str, str] = {}
    if params.min_charter_capital_vnd is not None:
        facts["charter_capital_vnd"] = decimal_text(params.min_charter_capital_vnd / 2)
    elif params.max_foreign_ownership_pct is not None:
        facts["foreign_ownership_pct"] = decimal_text(min(params.max_foreign_ownership_pct + 10, Decimal(100)))
    else:
        facts["institutional_ownership_pct"] = "0"
    row = builder.emit("participant", t + timedelta(hours=3), **facts)
    sim.add("participant_limits", "participant facts below the licence conditions", [row])


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = (
    "A participant-level condition (capital or ownership) is no longer met: escalate to the licensing "
    "team for a formal review."
)

KIND = RuleKind(
    "participant_limits",
    parse,
    fixed("participant"),
    check,
    new_state=new_state,
    utilisation=utilisation,
    runbook=RUNBOOK,
    inject=inject,
)
