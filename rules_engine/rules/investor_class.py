"""Only eligible customer classes may transact (optionally only for some assets)."""

from __future__ import annotations

from dataclasses import dataclass

from sandboxwatch.rules_engine.events import INVESTOR_CLASSES, Event, FundsEvent, TradeEvent
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamError, ParamReader
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed


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


KIND = RuleKind("investor_class", parse, fixed("trade", "deposit", "withdrawal"), check)
