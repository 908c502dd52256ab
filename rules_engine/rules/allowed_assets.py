"""Only the approved crypto-assets may be traded, deposited or withdrawn."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
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


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    t = sim.t
    small = sim.small
    name, _ = sim.bad_account("allowed_assets", t)
    listed = rule.params.assets
    asset = next(a for a in ("ETH", "SOL", "XRP", "DOGE") if a not in listed)
    row = builder.trade(t + timedelta(minutes=5), name, small, base=asset, price=Decimal(90_000_000))
    sim.add("allowed_assets", f"a trade in unapproved asset {asset}", [row])


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = (
    "An unapproved asset was traded or moved: ask the participant to suspend the instrument and explain "
    "how it was listed."
)

KIND = RuleKind(
    "allowed_assets",
    parse,
    fixed("trade", "deposit", "withdrawal"),
    check,
    runbook=RUNBOOK,
    inject=inject,
)
