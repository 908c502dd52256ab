"""FATF Recommendation 16: on-chain transfers at or above the threshold carry originator and
beneficiary names."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sandboxwatch.rules_engine.events import Event, FundsEvent
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamReader
from sandboxwatch.rules_engine.money import decimal_text
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed


@dataclass(frozen=True, slots=True)
class Params:
    threshold: Decimal


def parse(reader: ParamReader) -> Params:
    return Params(reader.req_decimal("threshold"))


def check(rule: RuleSpec, event: Event, facts: Facts, state: None) -> Findings:
    params: Params = rule.params
    if not isinstance(event, FundsEvent) or event.rail != "onchain":
        return None
    value = facts.value
    if value is None or value < params.threshold:
        return None
    info = event.travel_rule
    missing = []
    if info is None or info.originator is None or not info.originator.name:
        missing.append("originator")
    if info is None or info.beneficiary is None or not info.beneficiary.name:
        missing.append("beneficiary")
    if not missing:
        return None
    return [
        rule.finding(
            subject=event.account,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            observed=value,
            limit=params.threshold,
            message=f"On-chain {event.type} {event.event_id} worth {decimal_text(value)} "
            f"{facts.header.reporting_currency} lacks the {' and '.join(missing)} name.",
        )
    ]


KIND = RuleKind("travel_rule", parse, fixed("deposit", "withdrawal"), check, valued=True)
