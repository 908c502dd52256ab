"""Activity outside the licence term: the pilot only authorises what happens between valid_from and
valid_until."""

from __future__ import annotations

from sandboxwatch.rules_engine.events import EVENT_TYPES, Event, account_of
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed, no_params


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


KIND = RuleKind("licence_period", no_params, fixed(*EVENT_TYPES), check)
