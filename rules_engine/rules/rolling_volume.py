"""Per-customer volume cap over a trailing event-time window, reported once each time it is crossed."""

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

DEFAULT_TYPES = ("trade",)
EVIDENCE_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Params:
    window: timedelta
    max: Decimal
    applies_to: frozenset[str]
    fees: bool = False  # count the venue's fee in the value (licence parameter fees: include)


@fast_pickle
@dataclass(slots=True)
class Window:
    """Events inside (now - window, now] and their exact sum; ``above`` remembers a reported crossing."""

    entries: deque[tuple[datetime, Decimal, str]] = field(default_factory=deque)
    total: Decimal = ZERO
    above: bool = False


State = dict[str, Window]


def parse(reader: ParamReader) -> Params:
    return Params(
        reader.duration("window"),
        reader.req_decimal("max"),
        reader.event_types("applies_to", DEFAULT_TYPES),
        fees_param(reader),
    )


def new_state(params: Params) -> State:
    return {}


def check(rule: RuleSpec, event: Event, facts: Facts, state: State) -> Findings:
    params: Params = rule.params
    value = counted_value(event, facts, params.fees)
    account = account_of(event)
    if value is None or account is None:
        return None
    window = state.get(account)
    if window is None:
        window = state[account] = Window()
    horizon = event.ts - params.window
    entries = window.entries
    while entries and entries[0][0] <= horizon:
        window.total -= entries.popleft()[1]
    entries.append((event.ts, value, event.event_id))
    window.total += value
    if window.total <= params.max:
        window.above = False
        return None
    if window.above:
        return None
    window.above = True
    evidence = [entry[2] for entry in entries][-EVIDENCE_LIMIT:]
    return [
        rule.finding(
            subject=account,
            ts=event.ts,
            key=event.event_id,
            evidence=evidence,
            observed=window.total,
            limit=params.max,
            message=f"Account {account} reached {decimal_text(window.total)} "
            f"{facts.header.reporting_currency} over {len(entries)} events in the trailing window, "
            f"above the cap of {decimal_text(params.max)}.",
        )
    ]


KIND = RuleKind("rolling_volume", parse, lambda p: p.applies_to, check, new_state=new_state, valued=True)
