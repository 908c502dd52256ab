"""Large transactions need a large_value report within the deadline (Decision 11/2023/QD-TTg).

Judged on the event-time clock: a transaction is only found unreported once event time has passed its
deadline, so a slow stream never produces a false finding and a replay produces the same one."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.events import Event, ReportEvent, account_of
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamReader
from sandboxwatch.rules_engine.money import decimal_text
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind
from sandboxwatch.rules_engine.valuation import counted_value, fees_param

if TYPE_CHECKING:
    from sandboxwatch.simulator.day_builder import Injection


DEFAULT_TYPES = ("trade", "deposit", "withdrawal")


@dataclass(frozen=True, slots=True)
class Params:
    threshold: Decimal
    deadline: timedelta
    applies_to: frozenset[str]
    fees: bool = False  # count the venue's fee in the value (licence parameter fees: include)


@dataclass(slots=True)
class State:
    # (due, event_id, subject, event ts, value): a heap ordered by due time.
    pending: list[tuple[datetime, str, str, datetime, Decimal]] = field(default_factory=list)
    reported: dict[str, datetime] = field(default_factory=dict)


def parse(reader: ParamReader) -> Params:
    return Params(
        reader.req_decimal("threshold"),
        reader.duration("deadline"),
        reader.event_types("applies_to", DEFAULT_TYPES),
        fees_param(reader),
    )


def new_state(params: Params) -> State:
    return State()


def check(rule: RuleSpec, event: Event, facts: Facts, state: State) -> Findings:
    params: Params = rule.params
    if isinstance(event, ReportEvent):
        if event.report_type == "large_value":
            for ref in event.refs:
                earlier = state.reported.get(ref)
                if earlier is None or event.ts < earlier:
                    state.reported[ref] = event.ts
        return None
    if event.type not in params.applies_to:
        return None
    # The gross value is facts.value; counted_value (a call per event) only when fees are counted.
    value = counted_value(event, facts, True) if params.fees else facts.value
    if value is None or value < params.threshold:
        return None
    subject = account_of(event) or event.participant
    heapq.heappush(state.pending, (event.ts + params.deadline, event.event_id, subject, event.ts, value))
    return None


def on_clock(rule: RuleSpec, now: datetime, facts: Facts, state: State) -> Findings:
    pending = state.pending
    if not pending or pending[0][0] >= now:
        return None
    params: Params = rule.params
    found = []
    while pending and pending[0][0] < now:
        due, event_id, subject, ts, value = heapq.heappop(pending)
        filed = state.reported.get(event_id)
        if filed is not None and filed <= due:
            continue
        late = f"; a report came only at {filed.isoformat()}" if filed is not None else ""
        found.append(
            rule.finding(
                subject=subject,
                ts=ts,
                key=event_id,
                evidence=(event_id,),
                observed=value,
                limit=params.threshold,
                message=f"Event {event_id} worth {decimal_text(value)} {facts.header.reporting_currency} "
                f"had no large-value report by {due.isoformat()}{late}.",
            )
        )
    return found


def _types(params: Params) -> frozenset[str]:
    return params.applies_to | {"report"}


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    start = sim.start
    params = rule.params
    at = start - params.deadline - timedelta(hours=1)
    name, _ = sim.bad_account("large_value_report", at - timedelta(minutes=1))
    row = builder.bank("deposit", at, name, params.threshold)
    also = tuple(k for k in sim.value_rules_hit(params.threshold) if k != "large_value_report")
    sim.add("large_value_report", "a large deposit never reported", [row], also)


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = "A large-value transaction was not reported in time: request the overdue report now and record the delay."

KIND = RuleKind(
    "large_value_report",
    parse,
    _types,
    check,
    new_state=new_state,
    on_clock=on_clock,
    valued=True,
    runbook=RUNBOOK,
    inject=inject,
)
