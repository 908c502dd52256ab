"""On-chain money may only move to or from the customer's registered personal wallet."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.events import Event, FundsEvent
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.reference_lists import address_key
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed, no_params

if TYPE_CHECKING:
    from sandboxwatch.simulator.day_builder import Injection


def check(rule: RuleSpec, event: Event, facts: Facts, state: None) -> Findings:
    if not isinstance(event, FundsEvent) or event.rail != "onchain" or event.address is None:
        return None
    account = facts.accounts.get(event.account)
    if account is not None and address_key(event.address) in account.wallets:
        return None
    return [
        rule.finding(
            subject=event.account,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            message=f"On-chain {event.type} {event.event_id} uses address {event.address}, which is not a "
            f"registered wallet of account {event.account}.",
        )
    ]


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    t = sim.t
    small = sim.small
    name, _ = sim.bad_account("registered_wallet", t)
    row = builder.onchain("withdrawal", t + timedelta(minutes=5), name, builder.hex(40), small)
    sim.add("registered_wallet", "an on-chain withdrawal to an unregistered address", [row])


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = (
    "Funds moved to or from a wallet the customer never registered: request the wallet ownership evidence"
    " and hold further withdrawals to it."
)

KIND = RuleKind(
    "registered_wallet",
    no_params,
    fixed("deposit", "withdrawal"),
    check,
    runbook=RUNBOOK,
    inject=inject,
)
