"""HTTP routes of the case workflow (api/case_workflow.py) over the chained record (store/case_trail.py).

Roles: regulators transition and assign (one case or many at once); auditors read everything, and verify
the chain; a participant reads its own cases (state, resolution, due date, its own answers: not the
regulators' names, reasons or assignees) and answers them with a remediation note, nothing more. Another
participant's case is answered exactly as a case that does not exist (404), and the attempt is recorded as
a denial. A refused transition is 409 (the state does not allow it) or 422 (the request is incomplete),
with the reason."""

# No "from __future__ import annotations": FastAPI reads these annotations at run time.
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from sandboxwatch.api.case_workflow import (
    ASSIGNEE_MAX,
    NOTE_MAX,
    REASON_MAX,
    CaseState,
    DueTimes,
    WorkflowError,
    allowed_for,
    decide,
)
from sandboxwatch.api.case_workflow import Request as CaseRequest
from sandboxwatch.api.keys import Principal
from sandboxwatch.store.case_trail import CaseFilter, CaseTrail
from sandboxwatch.store.clickhouse_store import recorded_now
from sandboxwatch.store.history import MAX_LIMIT, MAX_OFFSET, History, Scope

ID_MAX = 200
BULK_MAX = 1000
Id = Annotated[str, PathParam(min_length=1, max_length=ID_MAX)]
OptionalId = Annotated[str | None, Query(max_length=ID_MAX)]
# What a participant may read of a transition: what happened to its case and when, and its own answers.
PARTICIPANT_VIEW = ("seq", "finding_id", "action", "from_state", "to_state", "resolution", "at")


class TransitionIn(BaseModel):
    action: Literal["acknowledge", "resolve", "reopen", "assign"]
    resolution: Literal["remedied", "accepted_risk", "false_positive", ""] = ""
    reason: str = Field("", max_length=REASON_MAX)
    assignee: str | None = Field(None, max_length=ASSIGNEE_MAX)


class BulkIn(TransitionIn):
    finding_ids: list[Annotated[str, Field(min_length=1, max_length=ID_MAX)]] = Field(min_length=1, max_length=BULK_MAX)


class AnswerIn(BaseModel):
    note: str = Field(min_length=1, max_length=NOTE_MAX)
    filename: str = Field("", max_length=ID_MAX, description="the uploaded file's name, if the note came from one")


def _for(who: Principal, transition: dict[str, Any]) -> dict[str, Any]:
    if who.role != "participant":
        return transition
    shown = {k: transition[k] for k in PARTICIPANT_VIEW}
    if transition["action"] == "answer":
        shown["note"] = transition["note"]
    return shown


def _case_for(who: Principal, case: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in case.items() if k != "assignee"} if who.role == "participant" else case


def include_cases(
    app: FastAPI,
    history: History,
    principal: Callable[..., Principal],
    deny: Callable[[Request, Principal | None, int, str], Exception],
    due: DueTimes | None = None,
    clock: Callable[[], datetime] = recorded_now,
) -> None:
    due = due or DueTimes()
    trail = CaseTrail(history.store.backend, history.db)
    Caller = Annotated[Principal, Depends(principal)]

    def regulator(request: Request, who: Caller) -> Principal:
        if who.role != "regulator":
            raise deny(request, who, 403, f"the {who.role} role may not transition or assign cases")
        return who

    def reader(request: Request, who: Caller) -> Principal:
        if who.role not in ("regulator", "auditor"):
            raise deny(request, who, 403, f"the {who.role} role may not do this")
        return who

    def find(request: Request, who: Principal, finding_id: str) -> dict[str, Any]:
        found = trail.cases(who.scope, CaseFilter(finding_id=finding_id, limit=1), due.seconds, clock())
        if found:
            return found[0]
        if who.participant is not None and trail.cases(Scope(), CaseFilter(finding_id=finding_id, limit=1),
                                                       due.seconds, clock()):  # fmt: skip
            raise deny(request, who, 404, f"case {finding_id} belongs to another participant")
        raise HTTPException(404, f"no finding {finding_id}")

    def apply(who: Principal, case: dict[str, Any], asked: CaseRequest) -> dict[str, Any]:
        if asked.action not in allowed_for(who.role):
            raise WorkflowError(403, f"the {who.role} role may not {asked.action} a case")

        def judged(current: tuple[str, str, str]) -> dict[str, str]:
            state, assignee, resolution = current
            return {k: str(v) for k, v in asdict(decide(CaseState(state, assignee, resolution), asked)).items()}

        return trail.append(case["participant"], case["finding_id"], judged, who.name, who.role, clock())

    def refused(exc: WorkflowError) -> HTTPException:
        return HTTPException(exc.status, exc.reason)

    @app.get("/api/v1/cases", summary="Cases on findings, most urgent first, by state, assignee, overdue, severity")
    def cases(
        request: Request,
        who: Caller,
        participant: OptionalId = None,
        state: Literal["open", "acknowledged", "resolved"] | None = None,
        assignee: Annotated[str | None, Query(max_length=ASSIGNEE_MAX, description="empty: unassigned")] = None,
        overdue: bool | None = None,
        severity: Literal["info", "warning", "breach", "critical"] | None = None,
        rule: OptionalId = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 500,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> list[dict[str, Any]]:
        if participant is not None and not who.scope.allows(participant):
            raise deny(request, who, 403, f"no access to participant {participant!r}")
        if assignee is not None and who.role == "participant":
            raise deny(request, who, 403, "participants may not filter by assignee")
        filt = CaseFilter(participant, None, state, assignee, severity, rule, overdue, None, None, limit, offset)
        return [_case_for(who, c) for c in trail.cases(who.scope, filt, due.seconds, clock())]

    @app.get("/api/v1/cases/verify", summary="Verify the hash-chained case transitions (regulators, auditors)")
    def verify(who: Annotated[Principal, Depends(reader)], participant: OptionalId = None) -> dict[str, Any]:
        problems = trail.verify(participant)
        heads = trail.heads()
        return {
            "intact": not problems,
            "problems": [p.describe() for p in problems],
            "heads": {p: {"seq": h.seq, "entry_hash": h.entry_hash} for p, h in sorted(heads.items())},
        }

    @app.get("/api/v1/cases/{finding_id}", summary="One case: its finding, state, due date and every transition")
    def case(request: Request, who: Caller, finding_id: Id) -> dict[str, Any]:
        found = find(request, who, finding_id)
        steps = trail.transitions(found["participant"], finding_id)
        return {**_case_for(who, found), "history": [_for(who, t) for t in steps]}

    @app.post(
        "/api/v1/cases/{finding_id}/transitions",
        summary="Regulators: acknowledge, resolve (with resolution and reason), reopen or assign a case",
    )
    def transition(
        request: Request, who: Annotated[Principal, Depends(regulator)], finding_id: Id, body: TransitionIn
    ) -> dict[str, Any]:
        found = find(request, who, finding_id)
        asked = CaseRequest(body.action, body.resolution, body.reason, body.assignee)
        try:
            return apply(who, found, asked)
        except WorkflowError as exc:
            raise refused(exc) from None

    @app.post("/api/v1/cases/bulk", summary="Regulators: one transition on many cases; each applied or refused")
    def bulk(request: Request, who: Annotated[Principal, Depends(regulator)], body: BulkIn) -> dict[str, Any]:
        asked = CaseRequest(body.action, body.resolution, body.reason, body.assignee)
        applied: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        for finding_id in dict.fromkeys(body.finding_ids):
            found = trail.cases(who.scope, CaseFilter(finding_id=finding_id, limit=1), due.seconds, clock())
            if not found:
                rejected.append({"finding_id": finding_id, "status": 404, "reason": f"no finding {finding_id}"})
                continue
            try:
                applied.append(apply(who, found[0], asked))
            except WorkflowError as exc:
                rejected.append({"finding_id": finding_id, "status": exc.status, "reason": exc.reason})
        return {"applied": applied, "refused": rejected}

    @app.post(
        "/api/v1/cases/{finding_id}/answers",
        summary=f"Participants: answer an own open case with a remediation note (at most {NOTE_MAX} characters)",
    )
    def answer(request: Request, who: Caller, finding_id: Id, body: AnswerIn) -> dict[str, Any]:
        if who.role != "participant":
            raise deny(request, who, 403, "only the participant whose case it is answers it")
        found = find(request, who, finding_id)
        note = f"[{body.filename}]\n{body.note}" if body.filename else body.note
        try:
            return _for(who, apply(who, found, CaseRequest("answer", note=note)))
        except WorkflowError as exc:
            raise refused(exc) from None
