"""Only eligible customer classes may transact (optionally only for some assets)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.events import INVESTOR_CLASSES, Event, FundsEvent, TradeEvent
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamError, ParamReader
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed

if TYPE_CHECKING:
    from sandboxwatch.simulator.day_builder import Injection


@dataclass(frozen=True, slots=True)
class Params:
    classes: frozenset[str]
    assets: frozenset[str] | None


def parse(reader: ParamReader) -> Params:
    classes = reader.strings("classes")
    assert classes is not None
    unknown = [c for c in classes if c not in INVESTOR_CLASSES]
    if unknown:
        raise ParamError("classes", f"unknown investor class(es): {', '.join(unknown)}")
    assets = reader.strings("assets", required=False)
    return Params(frozenset(classes), frozenset(assets) if assets else None)


def check(rule: RuleSpec, event: Event, facts: Facts, state: None) -> Findings:
    params: Params = rule.params
    if isinstance(event, TradeEvent):
        asset = event.base
    elif isinstance(event, FundsEvent):
        asset = event.asset
    else:
        return None
    if params.assets is not None and asset not in params.assets:
        return None
    account = facts.accounts.get(event.account)
    investor_class = account.investor_class if account else None
    if investor_class in params.classes:
        return None
    shown = investor_class or "unknown (no account record)"
    return [
        rule.finding(
            subject=event.account,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            message=f"Account {event.account} of investor class {shown} made {event.type} {event.event_id} "
            f"in {asset}; eligible classes are {', '.join(sorted(params.classes))}.",
        )
    ]


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    t = sim.t
    small = sim.small
    params = rule.params
    unlisted = [c for c in INVESTOR_CLASSES if c not in params.classes]
    if unlisted:
        name, acct = sim.bad_account("investor_class", t)
        acct["investor_class"] = unlisted[0]
        row = builder.trade(t + timedelta(minutes=5), name, small)
        sim.add("investor_class", f"a trade by a {unlisted[0]} investor", [row])
    else:
        row = builder.trade(t + timedelta(minutes=5), "ghost-0001", small)
        sim.add("investor_class", "a trade by an account with no record", [row], ("kyc_required",))


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = (
    "A customer of an ineligible investor class transacted: ask the participant to freeze the account and"
    " report how onboarding admitted it."
)

KIND = RuleKind(
    "investor_class",
    parse,
    fixed("trade", "deposit", "withdrawal"),
    check,
    runbook=RUNBOOK,
    inject=inject,
)
