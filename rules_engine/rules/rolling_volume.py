"""Per-customer volume cap over a trailing event-time window, reported once each time it is crossed.

A crossing is judged at each event from the window ending at that event: the sum of the window without the
event (what was in force the instant before it) is at or under the cap, and with it the sum is over. Between
events the sum only falls as old events leave, so this is also right after a window drained with no event
in between; a flag set at the last finding would miss the second crossing of a customer who breaks the cap,
goes quiet, and breaks it again."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.event_window import Window  # importable here too: older snapshots name it so
from sandboxwatch.rules_engine.events import Event
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamReader
from sandboxwatch.rules_engine.money import decimal_text
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind
from sandboxwatch.rules_engine.valuation import EXACT, counted_value, fees_param

if TYPE_CHECKING:
    from sandboxwatch.simulator.day_builder import Injection


DEFAULT_TYPES = ("trade",)
EVIDENCE_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Params:
    window: timedelta
    max: Decimal
    applies_to: frozenset[str]
    fees: bool = False  # count the venue's fee in the value (licence parameter fees: include)


State = dict[str, Window]


def parse(reader: ParamReader) -> Params:
    return Params(
        reader.duration("window"),
        reader.req_decimal("max"),
        reader.event_types("applies_to", DEFAULT_TYPES, per_account=True),
        fees_param(reader),
    )


def new_state(params: Params) -> State:
    return {}


def check(rule: RuleSpec, event: Event, facts: Facts, state: State) -> Findings:
    params: Params = rule.params
    # The gross value is facts.value; counted_value (a call per event) only when fees are counted.
    value = counted_value(event, facts, True) if params.fees else facts.value
    account: str | None = getattr(event, "account", None)  # account_of, without the call
    if value is None or account is None:
        return None
    window = state.get(account)
    if window is None:
        window = state[account] = Window()
    in_window, before = window.add(event.ts, value, event.event_id, params.window)
    total = EXACT.add(before, value)
    if before > params.max or total <= params.max:
        return None
    evidence = [entry[2] for entry in in_window][-EVIDENCE_LIMIT:]
    return [
        rule.finding(
            subject=account,
            ts=event.ts,
            key=event.event_id,
            evidence=evidence,
            observed=total,
            limit=params.max,
            message=f"Account {account} reached {decimal_text(total)} "
            f"{facts.header.reporting_currency} over {len(in_window)} events in the trailing window, "
            f"above the cap of {decimal_text(params.max)}.",
        )
    ]


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    t = sim.t
    start = sim.start
    params = rule.params
    limit = min(sim.limit("max_transaction_value", "max"), sim.limit("structuring", "threshold"))
    value = min(limit - 1000, params.max)
    count = math.floor(params.max / value) + 1
    gap = max(sim.window_of("structuring"), timedelta(hours=1)) + timedelta(hours=1)
    if gap * count < params.window:
        first = t - gap * (count - 1)
        name, _ = sim.bad_account("rolling_volume", first - timedelta(minutes=1))
        rows = [builder.trade(first + gap * i, name, value, price=builder.reference(start)) for i in range(count)]
        for row in rows:
            sim.report_if_large(row, value)
        sim.add("rolling_volume", f"{count} trades that together pass the rolling cap", rows)


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = (
    "A customer exceeded the rolling volume cap: ask the participant to restrict the account until the "
    "window clears and review its limit controls."
)

KIND = RuleKind(
    "rolling_volume",
    parse,
    lambda p: p.applies_to,
    check,
    new_state=new_state,
    valued=True,
    runbook=RUNBOOK,
    inject=inject,
)
