"""AML red flag: several transactions of one kind, each under the reporting threshold, that together
reach it within a short window (splitting to stay under the large-value report).

Reported once per crossing, judged like rolling_volume: at each event, the window ending at it without the
event does not meet the pattern (fewer than min_count, or a sum under the threshold) and with it the window
does. Leaving events only weaken the pattern, so a window that drained between events counts as not met."""

from __future__ import annotations

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


DEFAULT_TYPES = ("trade", "deposit", "withdrawal")


@dataclass(frozen=True, slots=True)
class Params:
    threshold: Decimal
    window: timedelta
    min_count: int
    applies_to: frozenset[str]
    fees: bool = False  # count the venue's fee in the value (licence parameter fees: include)


# Keyed by (account, event type): deposit, trade and withdrawal of the same money is normal flow, not
# splitting; three deposits just under the threshold are.
State = dict[tuple[str, str], Window]


def parse(reader: ParamReader) -> Params:
    return Params(
        reader.req_decimal("threshold"),
        reader.duration("window"),
        reader.integer("min_count", minimum=2),
        reader.event_types("applies_to", DEFAULT_TYPES, per_account=True),
        fees_param(reader),
    )


def new_state(params: Params) -> State:
    return {}


def check(rule: RuleSpec, event: Event, facts: Facts, state: State) -> Findings:
    params: Params = rule.params
    # The gross value is facts.value; counted_value (a call per event) only when fees are counted.
    value = counted_value(event, facts, True) if params.fees else facts.value
    if value is None or value >= params.threshold:
        return None
    account: str | None = getattr(event, "account", None)  # account_of, without the call
    if account is None:
        return None
    key = (account, event.type)
    window = state.get(key)
    if window is None:
        window = state[key] = Window()
    in_window, before = window.add(event.ts, value, event.event_id, params.window)
    total = EXACT.add(before, value)
    count = len(in_window)
    if count < params.min_count or total < params.threshold:
        return None
    if count - 1 >= params.min_count and before >= params.threshold:
        return None
    return [
        rule.finding(
            subject=account,
            ts=event.ts,
            key=event.event_id,
            evidence=[entry[2] for entry in in_window],
            observed=total,
            limit=params.threshold,
            message=f"Account {account} made {count} {event.type}s each under "
            f"{decimal_text(params.threshold)} that add up to {decimal_text(total)} "
            f"{facts.header.reporting_currency} within the window.",
        )
    ]


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    t = sim.t
    params = rule.params
    cap = sim.limit("max_transaction_value", "max")
    each = (params.threshold / params.min_count).quantize(Decimal(1000)) + 1000
    if each < params.threshold and each <= cap:
        name, _ = sim.bad_account("structuring", t)
        step = params.window / (params.min_count + 1)
        rows = [
            builder.bank("deposit", t + timedelta(minutes=5) + step * i, name, each) for i in range(params.min_count)
        ]
        sim.add("structuring", f"{params.min_count} deposits just under the reporting threshold", rows)


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = (
    "Several transactions just below the reporting threshold: escalate to AML review and ask for a "
    "suspicious-transaction assessment."
)

KIND = RuleKind(
    "structuring",
    parse,
    lambda p: p.applies_to,
    check,
    new_state=new_state,
    valued=True,
    runbook=RUNBOOK,
    inject=inject,
)
