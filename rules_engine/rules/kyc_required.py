"""Every transacting customer must have passed eKYC (and, where required, verified an own bank account)
at the moment of the transaction, not merely at some point."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.events import Event, FundsEvent, TradeEvent
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamReader
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed

if TYPE_CHECKING:
    from sandboxwatch.simulator.day_builder import Injection


@dataclass(frozen=True, slots=True)
class Params:
    require_bank_account: bool


_TRANSACTIONS = (TradeEvent, FundsEvent)


def parse(reader: ParamReader) -> Params:
    return Params(reader.flag("require_bank_account", default=False))


def check(rule: RuleSpec, event: Event, facts: Facts, state: None) -> Findings:
    if not isinstance(event, _TRANSACTIONS):
        return None
    account = facts.accounts.get(event.account)
    if account is None:
        problem = "has no account record (no eKYC on file)"
    elif account.kyc_status != "verified":
        problem = f"has KYC status {account.kyc_status}"
    elif rule.params.require_bank_account and account.bank_account_verified is not True:
        problem = "has no verified own bank account"
    else:
        return None
    return [
        rule.finding(
            subject=event.account,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            message=f"Account {event.account} {problem} at the time of {event.type} {event.event_id}.",
        )
    ]


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    t = sim.t
    small = sim.small
    name, _ = sim.bad_account("kyc_required", t, kyc="pending")
    row = builder.bank("deposit", t + timedelta(minutes=5), name, small)
    sim.add("kyc_required", "a deposit by an account whose eKYC is pending", [row])


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = (
    "A customer transacted without completed eKYC (or an own verified bank account): ask the participant "
    "to freeze the account until verification is complete."
)

KIND = RuleKind(
    "kyc_required",
    parse,
    fixed("trade", "deposit", "withdrawal"),
    check,
    runbook=RUNBOOK,
    inject=inject,
)
