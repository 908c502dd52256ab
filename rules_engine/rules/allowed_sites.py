"""Geographic scope: Da Nang licences name the testing sites where customers may transact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.events import CUSTOMER_TYPES, Event, account_of
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamReader
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed

if TYPE_CHECKING:
    from sandboxwatch.simulator.day_builder import Injection


@dataclass(frozen=True, slots=True)
class Params:
    sites: frozenset[str]


def parse(reader: ParamReader) -> Params:
    sites = reader.strings("sites")
    assert sites is not None
    return Params(frozenset(sites))


def check(rule: RuleSpec, event: Event, facts: Facts, state: None) -> Findings:
    params: Params = rule.params
    if event.site in params.sites:
        return None
    where = f"site {event.site}" if event.site else "no site"
    return [
        rule.finding(
            subject=account_of(event) or event.participant,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            message=f"{event.type} event {event.event_id} was made at {where}, outside the licensed sites "
            f"({', '.join(sorted(params.sites))}).",
        )
    ]


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    t = sim.t
    small = sim.small
    name, _ = sim.bad_account("allowed_sites", t)
    row = builder.trade(t + timedelta(minutes=5), name, small, site="HN-HK01")
    sim.add("allowed_sites", "a trade at a site outside the licence", [row])


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = (
    "A customer transacted from a site outside the licensed testing sites: ask the participant for the "
    "session record and block that channel."
)

KIND = RuleKind(
    "allowed_sites",
    parse,
    fixed(*CUSTOMER_TYPES),
    check,
    runbook=RUNBOOK,
    inject=inject,
)
