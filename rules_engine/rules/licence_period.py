"""Activity outside the licence term: the pilot only authorises what happens between valid_from and
valid_until."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.events import EVENT_TYPES, Event, account_of
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed, no_params

if TYPE_CHECKING:
    from sandboxwatch.simulator.day_builder import Injection


def check(rule: RuleSpec, event: Event, facts: Facts, state: None) -> Findings:
    header = facts.header
    if header.valid_from <= event.ts <= header.valid_until:
        return None
    when = "before the licence starts" if event.ts < header.valid_from else "after the licence ended"
    return [
        rule.finding(
            subject=account_of(event) or event.participant,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            message=f"{event.type} event {event.event_id} at {event.ts.isoformat()} is {when} "
            f"(term {header.valid_from.isoformat()} to {header.valid_until.isoformat()}).",
        )
    ]


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    t = sim.t
    small = sim.small
    header = sim.builder.licence.header
    name, _ = sim.bad_account("licence_period", t)
    late = builder.trade(header.valid_until + timedelta(days=1), name, small)
    sim.add("licence_period", "a trade dated after the licence ends", [late])


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = (
    "Activity outside the licence term: confirm the dates with the participant and order a halt of new "
    "business until a renewed licence is on file."
)

KIND = RuleKind(
    "licence_period",
    no_params,
    fixed(*EVENT_TYPES),
    check,
    runbook=RUNBOOK,
    inject=inject,
)
