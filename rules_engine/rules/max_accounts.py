"""Customer cap: each newly verified account beyond the cap is a breach of its own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from sandboxwatch.rules_engine.events import AccountEvent, Event
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamReader
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed


@dataclass(frozen=True, slots=True)
class Params:
    max: int


State = set[str]


def parse(reader: ParamReader) -> Params:
    return Params(reader.integer("max"))


def new_state(params: Params) -> State:
    return set()


def check(rule: RuleSpec, event: Event, facts: Facts, state: State) -> Findings:
    if not isinstance(event, AccountEvent):
        return None
    # The account's current state, not the event's: a late event (older than the state) changes nothing.
    current = facts.accounts.get(event.account)
    if current is None or current.kyc_status != "verified":
        state.discard(event.account)
        return None
    if event.account in state:
        return None
    state.add(event.account)
    params: Params = rule.params
    if len(state) <= params.max:
        return None
    return [
        rule.finding(
            subject=event.account,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            observed=Decimal(len(state)),
            limit=Decimal(params.max),
            message=f"Verifying account {event.account} brings the participant to {len(state)} verified "
            f"customers, above the cap of {params.max}.",
        )
    ]


def utilisation(rule: RuleSpec, state: State) -> Mapping[str, Decimal]:
    params: Params = rule.params
    return {"max": Decimal(len(state)) / Decimal(params.max)}


KIND = RuleKind("max_accounts", parse, fixed("account"), check, new_state=new_state, utilisation=utilisation)
