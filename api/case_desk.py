"""The regulators' case desk on the API: the case workflow (api/cases.py) and the monthly compliance report
(api/reports.py), included by ``create_app`` with one call."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request

from sandboxwatch.api.case_workflow import DueTimes
from sandboxwatch.api.cases import include_cases
from sandboxwatch.api.keys import Principal
from sandboxwatch.api.reports import include_reports
from sandboxwatch.store.history import History


def include_case_desk(
    app: FastAPI,
    history: History,
    principal: Callable[..., Principal],
    deny: Callable[[Request, Principal | None, int, str], Exception],
    case_due: str = "",
) -> None:
    """``case_due``: ``critical=1d,breach=3d,warning=10d,info=30d`` or part of it (ValueError if malformed)."""
    due = DueTimes.parse(case_due)
    include_cases(app, history, principal, deny, due)
    include_reports(app, history, principal, deny, due)
