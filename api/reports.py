"""HTTP route of the monthly compliance report (api/monthly_report.py), PDF or CSV.

Regulators and auditors get any participant's report; a participant only its own (another's is refused
with 403 and recorded as a denial, as for every participant-scoped route)."""

# No "from __future__ import annotations": FastAPI reads these annotations at run time.
import re
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from sandboxwatch.api.case_workflow import DueTimes
from sandboxwatch.api.keys import Principal
from sandboxwatch.api.monthly_report import ReportError, build_report, month_bounds, report_csv
from sandboxwatch.store.history import History

MEDIA = {"pdf": "application/pdf", "csv": "text/csv"}


def include_reports(
    app: FastAPI,
    history: History,
    principal: Callable[..., Principal],
    deny: Callable[[Request, Principal | None, int, str], Exception],
    due: DueTimes | None = None,
) -> None:
    Caller = Annotated[Principal, Depends(principal)]

    @app.get(
        "/api/v1/participants/{participant}/reports/monthly",
        summary="A participant's monthly compliance report: findings by rule and clause, cases, utilisation peaks",
        responses={200: {"content": {"application/pdf": {}, "text/csv": {}}}},
    )
    def monthly(
        request: Request,
        who: Caller,
        participant: Annotated[str, PathParam(min_length=1, max_length=200)],
        month: Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM, Vietnam time")],
        format: Literal["pdf", "csv"] = "pdf",
    ) -> Response:
        if not who.scope.allows(participant):
            raise deny(request, who, 403, f"no access to participant {participant!r}")
        try:
            month_bounds(month)
        except ReportError as exc:
            raise HTTPException(422, str(exc)) from None
        report = build_report(history.store, participant, month, due)
        if format == "pdf":
            from sandboxwatch.api.report_pdf import report_pdf

            body = report_pdf(report)
        else:
            body = report_csv(report)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", f"sandboxwatch-{participant}-{month}.{format}")  # a safe header
        disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
        return Response(body, media_type=MEDIA[format], headers=disposition)
