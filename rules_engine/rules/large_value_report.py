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
    # ref -> when reports citing it were filed: a datetime (one report, and every snapshot before a ref kept
    # several) or a sorted tuple of at most MAX_FILINGS.
    reported: dict[str, datetime | tuple[datetime, ...]] = field(default_factory=dict)
    # (filed, ref) for every filing kept in ``reported``: a heap, so the filings no pending or future event can
    # use are forgotten in event-time order (``_forget``) and ``reported`` stays bounded on a live worker.
    expiry: list[tuple[datetime, str]] = field(default_factory=list)

    def __setstate__(self, saved: tuple[None, dict[str, object]]) -> None:
        """Restore a snapshot, also one written before ``expiry`` existed (rebuilt from ``reported``)."""
        self.pending, self.reported, self.expiry = [], {}, []
        for name, value in saved[1].items():
            setattr(self, name, value)
        if not self.expiry and self.reported:
            self.expiry = [(when, ref) for ref, filed in self.reported.items() for when in _filings(filed)]
            heapq.heapify(self.expiry)


# Reports citing one event beyond these are a flood, not filings: the earliest are dropped. Dropping one can
# only make an event look unreported (a finding), never hide one.
MAX_FILINGS = 16
# Distinct refs kept at once, whatever the filings' times: a flood of reports citing made-up ids within one
# deadline must not grow the live worker without end. Beyond it the earliest filings are forgotten first, which
# as above can only make an event look unreported, never hide one (docs/licence.md).
MAX_REFS = 500_000


def _filings(value: datetime | tuple[datetime, ...] | None) -> tuple[datetime, ...]:
    return () if value is None else value if isinstance(value, tuple) else (value,)


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
            # Every filing time is kept, not only the earliest: a report dated before the event cannot be a
            # report of it (a participant knows its own next ids; one report listing them in advance would
            # cover every later event), so which filings fall from the event to its deadline is decided then.
            reported, expiry, when = state.reported, state.expiry, event.ts
            for ref in event.refs:
                earlier = reported.get(ref)
                if earlier is None:
                    reported[ref] = when
                elif when not in (times := _filings(earlier)):
                    reported[ref] = tuple(sorted((*times, when)))[-MAX_FILINGS:]
                else:
                    continue
                heapq.heappush(expiry, (when, ref))
            if len(reported) > MAX_REFS:
                _forget(state, None)
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


def _forget(state: State, before: datetime | None) -> None:
    """Forget the filings made before ``before``, or (None) the earliest ones until at most MAX_REFS refs are
    kept. A filing made at ``when`` covers only an event from ``when - deadline`` to ``when``, judged at
    ``when + deadline`` at the latest: once the clock has passed that (and the allowed lateness, for an event
    still arriving late), no event can use it."""
    reported, expiry = state.reported, state.expiry
    while expiry and (expiry[0][0] < before if before is not None else len(reported) > MAX_REFS):
        when, ref = heapq.heappop(expiry)
        filed = reported.get(ref)
        if filed is None:
            continue
        kept = tuple(t for t in _filings(filed) if t != when)
        if not kept:
            del reported[ref]
        else:
            reported[ref] = kept if len(kept) > 1 else kept[0]


def on_clock(rule: RuleSpec, now: datetime, facts: Facts, state: State) -> Findings:
    # Called at every event that moves the clock: nothing is computed unless something is due.
    pending = state.pending
    found = _overdue(rule, now, facts, state) if pending and pending[0][0] < now else None
    # After judging, so a finding still names the late or early filings of its event.
    expiry = state.expiry
    if expiry:
        horizon = now - rule.params.deadline - facts.header.allowed_lateness
        if expiry[0][0] < horizon:
            _forget(state, horizon)
    return found


def _overdue(rule: RuleSpec, now: datetime, facts: Facts, state: State) -> Findings:
    pending = state.pending
    if not pending or pending[0][0] >= now:
        return None
    params: Params = rule.params
    found = []
    while pending and pending[0][0] < now:
        due, event_id, subject, ts, value = heapq.heappop(pending)
        filed = _filings(state.reported.get(event_id))
        if any(ts <= when <= due for when in filed):
            continue
        after = [when for when in filed if when > due]
        late = ""
        if after:
            late = f"; a report came only at {after[0].isoformat()}"
        elif filed:
            late = f"; a report came dated before the event, at {filed[-1].isoformat()}"
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
