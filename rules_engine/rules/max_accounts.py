"""Customer cap: each newly verified account beyond the cap is a breach of its own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.events import AccountEvent, Event
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamReader
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed

if TYPE_CHECKING:
    from sandboxwatch.simulator.day_builder import Injection


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


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    end = sim.end
    clean_accounts = sim.clean_accounts
    verified_bad = sim.verified_bad
    cap = rule.params.max
    extra = cap - (clean_accounts + verified_bad) + 1
    if sim.room is not None and extra > sim.room:
        builder.not_injected.append(
            f"max_accounts (needs {extra:,} sign-ups to pass the cap of {cap:,}; the day has room for {sim.room:,})"
        )
    elif 0 < extra <= 50_000:
        rows = [
            builder.account(end - timedelta(minutes=30) + timedelta(milliseconds=i), f"late-{i:06d}")
            for i in range(extra)
        ]
        sim.add("max_accounts", f"{extra} late sign-ups that take the customer count over the cap", rows[-1:])


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = (
    "The customer cap is exceeded: order the participant to stop onboarding until accounts are within the"
    " licensed number."
)

KIND = RuleKind(
    "max_accounts",
    parse,
    fixed("account"),
    check,
    new_state=new_state,
    utilisation=utilisation,
    runbook=RUNBOOK,
    inject=inject,
)
