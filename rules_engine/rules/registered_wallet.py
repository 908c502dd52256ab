"""On-chain money may only move to or from the customer's registered personal wallet."""

from __future__ import annotations

from sandboxwatch.rules_engine.events import Event, FundsEvent
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed, no_params


def check(rule: RuleSpec, event: Event, facts: Facts, state: None) -> Findings:
    if not isinstance(event, FundsEvent) or event.rail != "onchain" or event.address is None:
        return None
    account = facts.accounts.get(event.account)
    if account is not None and event.address.lower() in account.wallets:
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


KIND = RuleKind("registered_wallet", no_params, fixed("deposit", "withdrawal"), check)
