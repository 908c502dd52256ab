"""Client assets must be fully held in custody: custody balance over client liabilities >= min_ratio."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from sandboxwatch.rules_engine.events import Event, ReserveEvent
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamReader
from sandboxwatch.rules_engine.money import ZERO, decimal_text, rounded
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed


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
    required = params.min_ratio * event.client_liabilities
    state[event.asset] = required / event.custody_balance if event.custody_balance else Decimal("Infinity")
    if event.custody_balance >= params.min_ratio * event.client_liabilities:
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


KIND = RuleKind("reserve_coverage", parse, fixed("reserve"), check, new_state=new_state, utilisation=utilisation)
