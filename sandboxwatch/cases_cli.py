"""``sandboxwatch cases list|verify`` and ``sandboxwatch report monthly``: the case workflow and the monthly
compliance report from the shell, over the same store functions as the API (with the regulator's scope:
the CLI runs with the operator's own database credentials)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sandboxwatch.cli_types import bounded_int
from sandboxwatch.exit_codes import EXIT_FINDINGS, EXIT_OK, Unusable
from sandboxwatch.history_cli import _store, _write
from sandboxwatch.store_options import OUT_HELP, add_store_options


def due_times(text: str | None) -> Any:
    from sandboxwatch.api.case_workflow import DueTimes

    try:
        return DueTimes.parse(text or "")
    except ValueError as exc:
        raise Unusable(f"--case-due: {exc}") from None


def cmd_cases_list(args: argparse.Namespace) -> int:
    from sandboxwatch.store.case_trail import CaseFilter, CaseTrail
    from sandboxwatch.store.clickhouse_store import recorded_now
    from sandboxwatch.store.history import Scope

    due = due_times(args.case_due)  # a malformed --case-due stops here, before the store is opened
    store = _store(args.clickhouse)
    overdue = None if args.overdue is None else args.overdue == "yes"
    filt = CaseFilter(args.participant, None, args.state, args.assignee, args.severity, None, overdue,
                      limit=args.limit)  # fmt: skip
    rows = CaseTrail(store.backend, store.db).cases(Scope(), filt, due.seconds, recorded_now())
    _write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), args.out)
    print(f"{len(rows)} cases", file=sys.stderr)
    return EXIT_OK


def cmd_cases_verify(args: argparse.Namespace) -> int:
    from sandboxwatch.store.case_trail import CaseTrail

    store = _store(args.clickhouse)
    trail = CaseTrail(store.backend, store.db)
    problems = trail.verify(args.participant)
    for problem in problems:
        print(problem.describe())
    scope = f" for {args.participant}" if args.participant else ""
    if problems:
        print(f"case transitions{scope}: {len(problems)} problem(s): the record was tampered with", file=sys.stderr)
        return EXIT_FINDINGS
    count = sum(h.seq for p, h in trail.heads().items() if not args.participant or p == args.participant)
    print(f"case transitions{scope}: intact ({count} chained transitions)", file=sys.stderr)
    return EXIT_OK


def cmd_report_monthly(args: argparse.Namespace) -> int:
    from sandboxwatch.api.monthly_report import ReportError, build_report, month_bounds, report_csv

    fmt = args.format or ("pdf" if str(args.out).lower().endswith(".pdf") else "csv")
    if fmt not in ("pdf", "csv"):
        raise Unusable("--format must be pdf or csv")
    try:
        month_bounds(args.month)
    except ReportError as exc:
        raise Unusable(f"--month: {exc}") from None
    due = due_times(args.case_due)
    report = build_report(_store(args.clickhouse), args.participant, args.month, due)
    if fmt == "pdf":
        from sandboxwatch.api.report_pdf import report_pdf

        _write(report_pdf(report), args.out)
    else:
        _write(report_csv(report), args.out)
    totals = report.by_severity
    print(f"{args.participant} {args.month}: {sum(totals.values())} findings, {len(report.cases)} cases, "
          f"{len(report.peaks)} limits -> {args.out}", file=sys.stderr)  # fmt: skip
    return EXIT_OK


def add_case_commands(commands: Any) -> None:
    from sandboxwatch.store.history import MAX_LIMIT

    cases = commands.add_parser("cases", help="the case workflow on findings")
    sub = cases.add_subparsers(dest="cases_command", required=True)
    listing = sub.add_parser("list", help="cases with their state, most urgent first (JSON lines)")
    add_store_options(listing, participant="only this participant's cases", out=OUT_HELP)
    listing.add_argument("--state", choices=("open", "acknowledged", "resolved"), help="only cases in this state")
    listing.add_argument("--assignee", help="cases assigned to this name ('' for unassigned)")
    listing.add_argument("--severity", choices=("info", "warning", "breach", "critical"), help="only this severity")
    listing.add_argument("--overdue", choices=("yes", "no"), help="only overdue cases (yes) or only cases not overdue")
    listing.add_argument("--case-due", help="due times by severity, e.g. critical=1d,breach=3d,warning=10d,info=30d")
    listing.add_argument(
        "--limit", type=bounded_int(1, MAX_LIMIT), default=10_000, help=f"at most this many cases (1 to {MAX_LIMIT})"
    )
    listing.set_defaults(run=cmd_cases_list)
    verify = sub.add_parser("verify", help="exit 0 if the case transitions are intact, 1 if altered or removed")
    add_store_options(verify, participant="verify only this participant's case trail (default: every one)")
    verify.set_defaults(run=cmd_cases_verify)

    report = commands.add_parser("report", help="compliance reports from the store")
    report_sub = report.add_subparsers(dest="report_command", required=True)
    monthly = report_sub.add_parser("monthly", help="a participant's monthly compliance report (PDF or CSV)")
    add_store_options(
        monthly,
        participant="the participant the report is for",
        out="FILE.pdf or FILE.csv ('-': standard output, with --format)",
        required=("participant", "out"),
    )
    monthly.add_argument("--month", required=True, help="YYYY-MM, the calendar month in Vietnam time")
    monthly.add_argument("--format", choices=("pdf", "csv"), help="default: from the --out file's extension")
    monthly.add_argument("--case-due", help="due times by severity, as for 'api serve'")
    monthly.set_defaults(run=cmd_report_monthly)
