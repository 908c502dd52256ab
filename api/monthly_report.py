"""A participant's monthly compliance report, gathered from the store: findings by rule with the licence
clause, the cases on them and their resolution, and each participant-level limit's peak utilisation.

The month is the calendar month in Vietnam time (UTC+07:00, no daylight saving), by event time: the
findings are those whose event time falls in it, and so are their cases (in the state they are in when the
report is made). Utilisation peaks come from replaying the participant's stored events through the licence
version the monitor loaded last (as the API's live state does), sampling every limit's share after each
event of the month: the peak and the event time it was reached at."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sandboxwatch.api.case_workflow import RESOLUTIONS, STATES, DueTimes
from sandboxwatch.rules_engine.engine import Engine, event_order
from sandboxwatch.rules_engine.isolation import process_isolated
from sandboxwatch.rules_engine.licence import Licence
from sandboxwatch.rules_engine.timestamps import MAX_YEAR, MIN_YEAR
from sandboxwatch.store.backtest import BacktestError, live_licence
from sandboxwatch.store.case_trail import CaseFilter, CaseTrail
from sandboxwatch.store.clickhouse_store import Store, recorded_now
from sandboxwatch.store.exports import csv_cell
from sandboxwatch.store.history import SEVERITY_ORDER, Scope
from sandboxwatch.store.report_queries import findings_by_rule

VIETNAM = timezone(timedelta(hours=7), "ICT")
MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")  # fullmatch: "$" would let "2025-10\n" through
CSV_COLUMNS = (
    "section", "participant", "month", "rule", "kind", "severity", "clause", "count", "finding_id", "state",
    "resolution", "changed", "limit", "peak_share", "at",
)  # fmt: skip


class ReportError(ValueError):
    pass


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """First and last second of a ``YYYY-MM`` month in Vietnam time."""
    match = MONTH.fullmatch(month)
    if not match:
        raise ReportError(f"month {month!r}: expected YYYY-MM")
    year, number = int(match.group(1)), int(match.group(2))
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ReportError(f"month {month!r}: events are dated {MIN_YEAR} to {MAX_YEAR}")
    start = datetime(year, number, 1, tzinfo=VIETNAM)
    following = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=VIETNAM)
    return start, following - timedelta(seconds=1)


@dataclass
class MonthlyReport:
    participant: str
    month: str
    start: datetime
    end: datetime
    generated: datetime
    licence: str | None
    rules: list[dict[str, Any]]
    cases: list[dict[str, Any]]
    peaks: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def by_severity(self) -> dict[str, int]:
        totals = dict.fromkeys(SEVERITY_ORDER, 0)
        for row in self.rules:
            totals[row["severity"]] = totals.get(row["severity"], 0) + row["findings"]
        return totals

    @property
    def by_state(self) -> dict[str, int]:
        totals = dict.fromkeys(STATES, 0)
        for case in self.cases:
            totals[case["state"]] += 1
        return totals

    @property
    def by_resolution(self) -> dict[str, int]:
        totals = dict.fromkeys(RESOLUTIONS, 0)
        for case in self.cases:
            if case["state"] == "resolved" and case["resolution"] in totals:
                totals[case["resolution"]] += 1
        return totals

    @property
    def compliant(self) -> bool:
        return self.by_severity["breach"] == 0 and self.by_severity["critical"] == 0


def utilisation_peaks(store: Store, licence: Licence, start: datetime, end: datetime) -> list[dict[str, Any]]:
    clauses = {rule.id: rule.clause for rule in licence.rules}
    engine = Engine(licence)
    peaks: dict[tuple[str, str], tuple[Decimal, datetime]] = {}
    records = sorted(store.stored_events(licence.participant), key=lambda r: event_order(r.event))

    def sample(ts: datetime) -> None:
        for rule, name, share in engine.utilisation():
            if (rule, name) not in peaks or share > peaks[(rule, name)][0]:
                peaks[(rule, name)] = (share, ts)

    last = None
    for record in records:
        if record.event.ts > end:
            break
        process_isolated(engine, record.event, record.source, 0, record.raw)
        if record.event.ts >= start:
            sample(record.event.ts)
            last = record.event.ts
    engine.flush()
    if last is not None:
        sample(last)
    return [
        {"rule": rule, "limit": name, "clause": clauses.get(rule, ""), "peak_share": share,
         "at": at.astimezone(UTC).isoformat()}
        for (rule, name), (share, at) in sorted(peaks.items())
    ]  # fmt: skip


def build_report(store: Store, participant: str, month: str, due: DueTimes | None = None) -> MonthlyReport:
    start, end = month_bounds(month)
    now = recorded_now()
    rules = findings_by_rule(store.backend, store.db, participant, start, end)
    trail = CaseTrail(store.backend, store.db)
    filt = CaseFilter(participant=participant, since=start, until=end, limit=100_000)
    cases = trail.cases(Scope(), filt, (due or DueTimes()).seconds, now)
    notes = []
    try:
        licence = live_licence(store, participant)
    except BacktestError:
        licence = None
        notes.append("no licence version of this participant in the store: utilisation peaks not computed")
    peaks = utilisation_peaks(store, licence, start, end) if licence is not None else []
    if len(cases) == filt.limit:
        notes.append(f"more than {filt.limit} cases: the list is cut at {filt.limit}")
    return MonthlyReport(participant, month, start, end, now, licence.id if licence else None, rules, cases, peaks,
                         notes)  # fmt: skip


class _SafeWriter(csv.DictWriter):  # type: ignore[type-arg]
    def __init__(self, out: io.StringIO) -> None:
        super().__init__(out, CSV_COLUMNS, lineterminator="\r\n")

    def writerow(self, rowdict: Any) -> Any:
        return super().writerow({k: csv_cell(v) for k, v in rowdict.items()})


def report_csv(report: MonthlyReport) -> bytes:
    """One table, a ``section`` column saying what each row is: ``rule``, ``case`` or ``peak``; RFC 4180 rows,
    and a text cell a spreadsheet would run as a formula is quoted as the findings export does."""
    out = io.StringIO()
    writer = _SafeWriter(out)
    writer.writeheader()
    base = {"participant": report.participant, "month": report.month}
    for row in report.rules:
        writer.writerow({**base, "section": "rule", "rule": row["rule"], "kind": row["kind"],
                         "severity": row["severity"], "clause": row["clause"], "count": row["findings"]})  # fmt: skip
    for case in report.cases:
        writer.writerow({**base, "section": "case", "rule": case["rule"], "kind": case["kind"],
                         "severity": case["severity"], "clause": case["clause"], "finding_id": case["finding_id"],
                         "state": case["state"], "resolution": case["resolution"], "changed": case["changed"],
                         "at": case["ts"]})  # fmt: skip
    for peak in report.peaks:
        share = format(peak["peak_share"], "f")
        writer.writerow({**base, "section": "peak", "rule": peak["rule"], "clause": peak["clause"],
                         "limit": peak["limit"], "peak_share": share, "at": peak["at"]})  # fmt: skip
    return out.getvalue().encode("utf-8")
