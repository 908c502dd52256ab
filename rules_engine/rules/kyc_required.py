"""Every transacting customer must have passed eKYC (and, where required, verified an own bank account)
at the moment of the transaction, not merely at some point."""

from __future__ import annotations

from dataclasses import dataclass

from sandboxwatch.rules_engine.events import Event, FundsEvent, TradeEvent
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamReader
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed


@dataclass(frozen=True, slots=True)
class Params:
    require_bank_account: bool


def parse(reader: ParamReader) -> Params:
    return Params(reader.flag("require_bank_account", default=False))


def check(rule: RuleSpec, event: Event, facts: Facts, state: None) -> Findings:
    if not isinstance(event, TradeEvent | FundsEvent):
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


KIND = RuleKind("kyc_required", parse, fixed("trade", "deposit", "withdrawal"), check)
