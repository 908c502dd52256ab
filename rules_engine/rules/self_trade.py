"""Wash trading: an account trading with itself creates volume without a change of ownership."""

from __future__ import annotations

from sandboxwatch.rules_engine.events import Event, TradeEvent
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed, no_params


def check(rule: RuleSpec, event: Event, facts: Facts, state: None) -> Findings:
    if not isinstance(event, TradeEvent) or event.counterparty_account != event.account:
        return None
    return [
        rule.finding(
            subject=event.account,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            message=f"Trade {event.event_id}: account {event.account} is its own counterparty.",
        )
    ]


KIND = RuleKind("self_trade", no_params, fixed("trade"), check)
