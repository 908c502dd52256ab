"""Periodic (monthly or quarterly) reports must arrive by due_day of the following period.

A period is judged only when the event-time clock is seen passing its due moment. Deadlines that fell
before the first event the engine saw are not judged: the report may have been filed before the data
begins, and an unprovable finding would only teach users to ignore findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.events import Event, ReportEvent
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamError, ParamReader
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed

if TYPE_CHECKING:
    from sandboxwatch.simulator.day_builder import Injection


_MONTHS = {"month": 1, "quarter": 3}


@dataclass(frozen=True, slots=True)
class Params:
    every: str
    due_day: int


@dataclass(slots=True)
class State:
    next_index: int | None = None  # months since year 0 of the next period to judge
    next_due: datetime | None = None  # its deadline, cached: the clock ticks on every event
    received: dict[str, datetime] = field(default_factory=dict)


def parse(reader: ParamReader) -> Params:
    every = reader.text("every", choices=tuple(_MONTHS))
    due_day = reader.integer("due_day")
    if due_day > 28:
        raise ParamError("due_day", "must be 28 or less so every month has it")
    return Params(every, due_day)


def new_state(params: Params) -> State:
    return State()


def period_label(index: int, every: str) -> str:
    year, month0 = divmod(index, 12)
    if every == "quarter":
        return f"{year}-Q{month0 // 3 + 1}"
    return f"{year}-{month0 + 1:02d}"


def _period_start_index(ts: datetime, every: str) -> int:
    index = ts.year * 12 + ts.month - 1
    return index - index % _MONTHS[every]


def _month_start(index: int, like: datetime) -> datetime:
    year, month0 = divmod(index, 12)
    return datetime(year, month0 + 1, 1, tzinfo=like.tzinfo)


def due_moment(index: int, params: Params, like: datetime) -> datetime:
    """End of due_day of the month after the period, in the licence's own time zone."""
    following = _month_start(index + _MONTHS[params.every], like)
    return following + timedelta(days=params.due_day)


def check(rule: RuleSpec, event: Event, facts: Facts, state: State) -> Findings:
    if isinstance(event, ReportEvent) and event.report_type == "periodic" and event.period:
        earlier = state.received.get(event.period)
        if earlier is None or event.ts < earlier:
            state.received[event.period] = event.ts
    return None


def on_clock(rule: RuleSpec, now: datetime, facts: Facts, state: State) -> Findings:
    if state.next_due is not None and now <= state.next_due:
        return None
    params: Params = rule.params
    header = facts.header
    step = _MONTHS[params.every]
    if state.next_index is None:
        # First tick: start with the earliest period whose deadline has not passed yet.
        index = _period_start_index(header.valid_from, params.every)
        while due_moment(index, params, header.valid_from) < now:
            index += step
        state.next_index = index
        state.next_due = due_moment(index, params, header.valid_from)
        return None
    found = []
    last_index = _period_start_index(header.valid_until.astimezone(header.valid_from.tzinfo), params.every)
    while state.next_index <= last_index:
        index = state.next_index
        due = due_moment(index, params, header.valid_from)
        if due >= now:
            break
        state.next_index = index + step
        label = period_label(index, params.every)
        filed = state.received.get(label)
        if filed is not None and filed <= due:
            continue
        late = f"; it came only at {filed.isoformat()}" if filed is not None else ""
        found.append(
            rule.finding(
                subject=header.participant,
                ts=due,
                key=f"period:{label}",
                message=f"The {params.every}ly report for {label} was due by {due.isoformat()} "
                f"and had not arrived{late}.",
            )
        )
    # After the licence's last period nothing is ever due again.
    state.next_due = (
        due_moment(state.next_index, params, header.valid_from)
        if state.next_index <= last_index
        else header.valid_until.replace(year=9999)
    )
    return found


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    label = sim.due_period()
    if label is not None:
        sim.add("periodic_report", f"no periodic report for {label}", [], subject=builder.licence.participant)


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = "A periodic report is overdue: contact the participant's reporting officer and record the late filing."

KIND = RuleKind(
    "periodic_report",
    parse,
    fixed("report"),
    check,
    new_state=new_state,
    on_clock=on_clock,
    runbook=RUNBOOK,
    inject=inject,
)
