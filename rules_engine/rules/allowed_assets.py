"""Only the approved crypto-assets may be traded, deposited or withdrawn."""

from __future__ import annotations

from dataclasses import dataclass

from sandboxwatch.rules_engine.events import Event, FundsEvent, TradeEvent
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamReader
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed


@dataclass(frozen=True, slots=True)
class Params:
    assets: frozenset[str]


def parse(reader: ParamReader) -> Params:
    assets = reader.strings("assets")
    assert assets is not None
    return Params(frozenset(assets))


def check(rule: RuleSpec, event: Event, facts: Facts, state: None) -> Findings:
    params: Params = rule.params
    if isinstance(event, TradeEvent):
        asset, account = event.base, event.account
    elif isinstance(event, FundsEvent):
        if event.asset == facts.header.reporting_currency:
            return None
        asset, account = event.asset, event.account
    else:
        return None
    if asset in params.assets:
        return None
    return [
        rule.finding(
            subject=account,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            message=f"{event.type} {event.event_id} involves {asset}, which is not an approved asset "
            f"({', '.join(sorted(params.assets))}).",
        )
    ]


KIND = RuleKind("allowed_assets", parse, fixed("trade", "deposit", "withdrawal"), check)
