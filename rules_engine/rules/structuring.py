"""AML red flag: several transactions of one kind, each under the reporting threshold, that together
reach it within a short window (splitting to stay under the large-value report)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from rules_engine.events import Event, account_of
from rules_engine.facts import Facts
from rules_engine.fast_pickle import fast_pickle
from rules_engine.licence_params import ParamReader
from rules_engine.money import ZERO, decimal_text
from rules_engine.rule_spec import RuleSpec
from rules_engine.rules.base import Findings, RuleKind
from rules_engine.valuation import counted_value, fees_param

DEFAULT_TYPES = ("trade", "deposit", "withdrawal")


@dataclass(frozen=True, slots=True)
class Params:
    threshold: Decimal
    window: timedelta
    min_count: int
    applies_to: frozenset[str]
    fees: bool = False  # count the venue's fee in the value (licence parameter fees: include)


@fast_pickle
@dataclass(slots=True)
class Window:
    entries: deque[tuple[datetime, Decimal, str]] = field(default_factory=deque)
    total: Decimal = ZERO
    flagged: bool = False


# Keyed by (account, event type): deposit, trade and withdrawal of the same money is normal flow, not
# splitting; three deposits just under the threshold are.
State = dict[tuple[str, str], Window]


def parse(reader: ParamReader) -> Params:
    return Params(
        reader.req_decimal("threshold"),
        reader.duration("window"),
        reader.integer("min_count", minimum=2),
        reader.event_types("applies_to", DEFAULT_TYPES),
        fees_param(reader),
    )


def new_state(params: Params) -> State:
    return {}


def check(rule: RuleSpec, event: Event, facts: Facts, state: State) -> Findings:
    params: Params = rule.params
    value = counted_value(event, facts, params.fees)
    account = account_of(event)
    if value is None or account is None or value >= params.threshold:
        return None
    key = (account, event.type)
    window = state.get(key)
    if window is None:
        window = state[key] = Window()
    horizon = event.ts - params.window
    entries = window.entries
    while entries and entries[0][0] <= horizon:
        window.total -= entries.popleft()[1]
    entries.append((event.ts, value, event.event_id))
    window.total += value
    if len(entries) < params.min_count or window.total < params.threshold:
        window.flagged = False
        return None
    if window.flagged:
        return None
    window.flagged = True
    return [
        rule.finding(
            subject=account,
            ts=event.ts,
            key=event.event_id,
            evidence=[entry[2] for entry in entries],
            observed=window.total,
            limit=params.threshold,
            message=f"Account {account} made {len(entries)} {event.type}s each under "
            f"{decimal_text(params.threshold)} that add up to {decimal_text(window.total)} "
            f"{facts.header.reporting_currency} within the window.",
        )
    ]


KIND = RuleKind("structuring", parse, lambda p: p.applies_to, check, new_state=new_state, valued=True)
