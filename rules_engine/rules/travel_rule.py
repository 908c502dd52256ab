"""FATF Recommendation 16: on-chain transfers at or above the threshold carry originator and
beneficiary names."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.events import Event, FundsEvent, Party
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamReader
from sandboxwatch.rules_engine.money import decimal_text
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed

if TYPE_CHECKING:
    from sandboxwatch.simulator.day_builder import Injection


@dataclass(frozen=True, slots=True)
class Params:
    threshold: Decimal


def parse(reader: ParamReader) -> Params:
    return Params(reader.req_decimal("threshold"))


def _named(party: Party | None) -> bool:
    """A party names someone when its name holds a letter or a digit (Unicode categories L*, N*): a name of
    blanks, invisible characters or punctuation (" ", "\u200b", "\u3000", "\u2800", "-") identifies no one,
    so it counts as missing, like an empty or absent name (docs/events.md)."""
    name = None if party is None else party.name
    return name is not None and any(unicodedata.category(char)[0] in "LN" for char in name)


def check(rule: RuleSpec, event: Event, facts: Facts, state: None) -> Findings:
    params: Params = rule.params
    if not isinstance(event, FundsEvent) or event.rail != "onchain":
        return None
    value = facts.value
    if value is None or value < params.threshold:
        return None
    info = event.travel_rule
    missing = []
    if info is None or not _named(info.originator):
        missing.append("originator")
    if info is None or not _named(info.beneficiary):
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


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    t = sim.t
    threshold = rule.params.threshold
    name, acct = sim.bad_account("travel_rule", t)
    row = builder.onchain(
        "withdrawal",
        t + timedelta(minutes=5),
        name,
        acct["wallets"][0],
        threshold * Decimal("1.05"),
        travel=False,
    )
    sim.add(
        "travel_rule",
        "an on-chain withdrawal above the threshold without originator/beneficiary",
        [row],
        sim.value_rules_hit(threshold * Decimal("1.05")),
    )


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = (
    "A transfer above the Travel Rule threshold lacks originator/beneficiary data: request the missing "
    "data and hold the counterparty until it is supplied."
)

KIND = RuleKind(
    "travel_rule",
    parse,
    fixed("deposit", "withdrawal"),
    check,
    valued=True,
    runbook=RUNBOOK,
    inject=inject,
)
