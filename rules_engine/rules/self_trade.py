"""Wash trading: an account trading with itself creates volume without a change of ownership."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.events import Event, TradeEvent
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed, no_params

if TYPE_CHECKING:
    from sandboxwatch.simulator.day_builder import Injection


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


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    t = sim.t
    small = sim.small
    name, _ = sim.bad_account("self_trade", t)
    row = builder.trade(t + timedelta(minutes=5), name, small, counterparty_account=name)
    sim.add("self_trade", "a trade where the account is its own counterparty", [row])


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = (
    "Possible wash trade (same beneficial owner on both sides): ask for the order records and refer to "
    "market-abuse review."
)

KIND = RuleKind(
    "self_trade",
    no_params,
    fixed("trade"),
    check,
    runbook=RUNBOOK,
    inject=inject,
)
