"""The HTTP API (OpenAPI at /openapi.json, browsable at /docs) and the regulators' console at /.

Authentication is a bearer key (``Authorization: Bearer <key>``). Every refusal (no key, unknown key, a
role without the right, another tenant's data) is logged and stored in ``access_denials``. Tenancy is
enforced twice: here, by refusing an explicit request for another participant, and in every query, by the
principal's scope.

Every input is bounded and validated before it reaches the store or the engine: ids and search text have a
maximum length, times must be RFC 3339 instants (bounds outside what the store holds are clamped, see
``store.sql_text``), limit and offset are capped, bodies are at most 1 MiB (``api.body_limit``), and a
pre-check event goes through the same parser and isolation as the live monitor. A bad request gets 4xx with
the reason; an unreachable store gets 503; nothing a client sends produces a 500."""

# No "from __future__ import annotations": FastAPI reads these annotations at run time, and the dependency
# aliases defined inside create_app must resolve to real objects there.
import json
import logging
import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from sandboxwatch.api.body_limit import BodyLimit
from sandboxwatch.api.finding_text import localise
from sandboxwatch.api.json_body import UniqueKeyRoute
from sandboxwatch.api.keys import KeyRing, Principal
from sandboxwatch.api.live_state import LiveState
from sandboxwatch.api.overview import Lang, add_overview_routes
from sandboxwatch.api.self_check_upload import MAX_UPLOAD, UPLOAD_PATH, add_self_check_routes
from sandboxwatch.rules_engine.event_parser import FieldError, event_from_dict
from sandboxwatch.rules_engine.findings import FAILING_SEVERITIES
from sandboxwatch.rules_engine.timestamps import MAX_YEAR, MIN_YEAR, is_rfc3339, parse_timestamp
from sandboxwatch.store.backends import StoreError
from sandboxwatch.store.exports import findings_csv, findings_parquet
from sandboxwatch.store.finding_trail import TAIL_NOTE, Head
from sandboxwatch.store.history import MAX_LIMIT, MAX_OFFSET, FindingFilter, History, Scope
from sandboxwatch.store.sql_text import STORE_MAX, STORE_MIN

log = logging.getLogger("sandboxwatch.api")
CONSOLE = Path(__file__).parent / "console"


class Denied(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


ID_MAX = 200  # participant, rule, kind and finding ids are short names; anything longer is not one
TEXT_MAX = 500
TIME_MAX = 64

Id = Annotated[str, PathParam(min_length=1, max_length=ID_MAX)]
OptionalId = Annotated[str | None, Query(max_length=ID_MAX)]


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class SafeJSONResponse(JSONResponse):
    """JSON that always encodes: text holding a lone surrogate (legal in a JSON string escape, not in
    UTF-8) is written escaped, and a non-finite number (which JSON cannot hold) as its text, instead of
    failing the response."""

    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except ValueError:
            text = json.dumps(_finite(content), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", errors="backslashreplace")


class HeadIn(BaseModel):
    """One participant's chain head as ``sandboxwatch audit heads`` writes it."""

    seq: int = Field(ge=1, le=2**63 - 1)
    entry_hash: str = Field(pattern="^[0-9a-f]{64}$")


ParticipantKey = Annotated[str, Field(min_length=1, max_length=ID_MAX)]
ArchivedHeads = Annotated[dict[ParticipantKey, HeadIn], Field(max_length=100_000)]


class NoteIn(BaseModel):
    status: Literal["acknowledged", "investigating", "escalated", "closed", "comment"] = "comment"
    note: str = Field(min_length=1, max_length=5000)


def _time(value: str | None, name: str) -> datetime | None:
    """An RFC 3339 instant; the store clamps bounds to the range its DateTime columns hold."""
    if value is None:  # from= (a client's unset variable) is refused below, never taken for "no bound"
        return None
    if len(value) > TIME_MAX:
        raise HTTPException(422, f"{name}: not an RFC 3339 timestamp (longer than {TIME_MAX} characters)")
    if not (value.isascii() and value.isprintable()):
        # Python's ISO parser stops at a NUL and ignores what follows: refused here, whatever it would say.
        raise HTTPException(422, f"{name}: not an RFC 3339 timestamp (it holds a control or non-ASCII character)")
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError) as exc:
        reason = str(exc)
    # Events are bounded to the years 1970..2199 (docs/events.md); a query bound outside them is still a
    # bound, clamped to what the store can hold: it selects the same rows.
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    out_of_range = parsed is not None and (parsed.year < MIN_YEAR or parsed.year > MAX_YEAR)
    if parsed is None or parsed.tzinfo is None or not out_of_range or not is_rfc3339(value):
        raise HTTPException(422, f"{name}: {reason}")
    return STORE_MIN if parsed.year < MIN_YEAR else STORE_MAX


def create_app(history: History, keys: KeyRing, live: LiveState, case_due: str = "") -> FastAPI:
    """``case_due``: when cases fall due by severity, as ``api serve --case-due`` takes it (api/case_workflow.py)."""
    app = FastAPI(
        title="sandboxwatch",
        version="1",
        description="Licence-compliance history, evidence and pre-checks for regulatory sandbox participants.",
        default_response_class=SafeJSONResponse,
    )
    app.router.route_class = UniqueKeyRoute  # before any route: each JSON body decoded once, repeats refused
    app.add_middleware(BodyLimit, larger=[(UPLOAD_PATH, MAX_UPLOAD)])

    def deny(request: Request, principal: Principal | None, status: int, reason: str) -> Denied:
        name = principal.name if principal else "-"
        role = principal.role if principal else "-"
        who = principal.participant or "" if principal else ""
        log.warning("denied %s %s to %s (%s): %s", request.method, request.url.path, name, role, reason)
        history.record_denial(name, role, who, request.method, request.url.path, status, reason)
        return Denied(status, reason)

    @app.exception_handler(Denied)
    async def denied(request: Request, exc: Denied) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return SafeJSONResponse({"detail": exc.reason}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Where and why, without echoing the input back (it may be a megabyte, or not encode at all).
        errors = [{k: v for k, v in error.items() if k != "input"} for error in exc.errors()]
        return SafeJSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    @app.exception_handler(StoreError)
    async def store_down(request: Request, exc: StoreError) -> JSONResponse:
        log.error("store error on %s %s: %s", request.method, request.url.path, exc)
        return SafeJSONResponse({"detail": "the store is unavailable; try again"}, status_code=503)

    def principal(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not token:
            raise deny(request, None, 401, "no API key (send Authorization: Bearer <key>)")
        found = keys.authenticate(token)
        if found is None:
            raise deny(request, None, 401, "unknown API key")
        return found

    Caller = Annotated[Principal, Depends(principal)]

    def require(*roles: str) -> Callable[[Request, Principal], Principal]:
        def check(request: Request, who: Caller) -> Principal:
            if who.role not in roles:
                raise deny(request, who, 403, f"the {who.role} role may not do this")
            return who

        return check

    def own(request: Request, who: Principal, participant: str | None) -> None:
        if participant is not None and not who.scope.allows(participant):
            raise deny(request, who, 403, f"no access to participant {participant!r}")

    from sandboxwatch.api.case_desk import include_case_desk  # imported here: its routes use the helpers above

    include_case_desk(app, history, principal, deny, case_due)  # case workflow, monthly report (api/case_desk.py)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/me", summary="Who the key belongs to")
    def me(who: Caller) -> dict[str, Any]:
        return who.to_dict()

    @app.get("/api/v1/participants", summary="Participants visible to the caller")
    def participants(who: Caller) -> list[str]:
        return history.participants(who.scope)

    @app.get(
        "/api/v1/findings",
        summary="Findings, newest first, filtered by participant, rule, kind, severity, time range and text",
        responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}}},
    )
    def findings(
        request: Request,
        who: Caller,
        participant: OptionalId = None,
        rule: OptionalId = None,
        kind: OptionalId = None,
        severity: Literal["info", "warning", "breach", "critical"] | None = None,
        since: Annotated[
            str | None, Query(alias="from", description="RFC 3339, inclusive", max_length=TIME_MAX)
        ] = None,
        until: Annotated[str | None, Query(alias="to", description="RFC 3339, inclusive", max_length=TIME_MAX)] = None,
        q: Annotated[str | None, Query(description="text in the message, subject or id", max_length=TEXT_MAX)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 500,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        format: Literal["json", "csv", "parquet"] = "json",
        lang: Lang = None,
    ) -> Any:
        own(request, who, participant)
        filt = FindingFilter(
            participant, rule, kind, severity, _time(since, "from"), _time(until, "to"), q, limit, offset
        )
        rows = history.findings(who.scope, filt)
        if format == "csv":
            return Response(findings_csv(rows), media_type="text/csv",
                            headers={"Content-Disposition": 'attachment; filename="findings.csv"'})  # fmt: skip
        if format == "parquet":
            return Response(findings_parquet(rows), media_type="application/vnd.apache.parquet",
                            headers={"Content-Disposition": 'attachment; filename="findings.parquet"'})  # fmt: skip
        return localise(rows, lang) if lang else rows

    @app.get("/api/v1/findings/{finding_id}", summary="One finding with its evidence events and notes")
    def finding(request: Request, who: Caller, finding_id: Id, lang: Lang = None) -> dict[str, Any]:
        item = history.finding(who.scope, finding_id)
        if item is None:
            if who.participant is not None and history.finding(Scope(), finding_id) is not None:
                deny(request, who, 404, f"finding {finding_id} belongs to another participant")
            raise HTTPException(404, f"no finding {finding_id}")
        return localise([item], lang)[0] if lang else item

    @app.post("/api/v1/findings/{finding_id}/notes", summary="Regulators: acknowledge or annotate a finding")
    def add_note(
        request: Request,
        who: Annotated[Principal, Depends(require("regulator"))],
        finding_id: Id,
        note: NoteIn,
    ) -> dict[str, Any]:
        item = history.finding(who.scope, finding_id)
        if item is None:
            raise HTTPException(404, f"no finding {finding_id}")
        return history.add_note(item["participant"], finding_id, who.name, note.status, note.note)

    @app.get("/api/v1/participants/{participant}/summary", summary="Compliance summary for a period")
    def summary(
        request: Request,
        who: Caller,
        participant: Id,
        since: Annotated[str, Query(alias="from", description="RFC 3339, inclusive", max_length=TIME_MAX)],
        until: Annotated[str, Query(alias="to", description="RFC 3339, inclusive", max_length=TIME_MAX)],
    ) -> dict[str, Any]:
        own(request, who, participant)
        start, end = _time(since, "from"), _time(until, "to")
        assert start is not None and end is not None
        result = history.summary(who.scope, participant, start, end)
        assert result is not None
        return result

    @app.get("/api/v1/participants/{participant}/utilisation", summary="Share of each participant-level limit in use")
    def utilisation(request: Request, who: Caller, participant: Id) -> list[dict[str, str]]:
        own(request, who, participant)
        if not live.licensed(participant):
            raise HTTPException(404, f"no licence loaded for {participant}")
        return live.utilisation(participant)

    @app.post(
        "/api/v1/participants/{participant}/precheck",
        summary="Would this event breach the licence now? Judged on the live state, which it does not change",
    )
    def precheck(
        request: Request,
        who: Annotated[Principal, Depends(require("participant", "regulator"))],
        participant: Id,
        event: Annotated[dict[str, Any], Body(description="a canonical event (events contract, version 1)")],
    ) -> dict[str, Any]:
        own(request, who, participant)
        # A malformed event (no participant field at all, or one that is not text) is the client's mistake:
        # 422 with the reason. Only a well-formed event naming another participant is an access question.
        named = event.get("participant")
        if not isinstance(named, str) or not named:
            reason = "required field is missing" if named in (None, "") else "must be a string"
            raise HTTPException(422, {"field": "participant", "reason": reason})
        if named != participant:
            raise deny(request, who, 403, "the event's participant is not the one in the path")
        if not live.licensed(participant):
            raise HTTPException(404, f"no licence loaded for {participant}")
        try:
            parsed = event_from_dict(event)
        except FieldError as exc:
            raise HTTPException(422, {"field": exc.field, "reason": exc.reason}) from None
        except Exception as exc:  # the parser must bound everything; if it does not, the client still gets 4xx
            log.exception("pre-check event could not be parsed")
            raise HTTPException(422, {"field": None, "reason": f"could not be parsed ({type(exc).__name__})"}) from None
        findings, error = live.precheck(parsed)
        if error is not None:
            # The monitor would record this event as invalid_event; the pre-check cannot say it is fine.
            raise HTTPException(422, {"field": error.field, "reason": error.reason})
        found = [f.to_dict() for f in findings]
        return {"would_breach": any(f["severity"] in FAILING_SEVERITIES for f in found), "findings": found}

    @app.get("/api/v1/access-denials", summary="Refused requests (regulators and auditors)")
    def access_denials(
        who: Annotated[Principal, Depends(require("regulator", "auditor"))],
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
    ) -> list[dict[str, Any]]:
        return history.denials(limit)

    def verified(participant: str | None, archived: dict[str, HeadIn] | None) -> dict[str, Any]:
        expected = None if archived is None else {p: Head(h.seq, h.entry_hash) for p, h in archived.items()}
        problems = history.store.trail.verify(participant, expected)
        heads = history.store.trail.heads()
        answer: dict[str, Any] = {
            "intact": not problems,
            "problems": [p.describe() for p in problems],
            "heads": {p: {"seq": h.seq, "entry_hash": h.entry_hash} for p, h in heads.items()},
        }
        if archived is None:
            answer["not_checked"] = TAIL_NOTE  # POST the archived heads to check this too
        return answer

    @app.get("/api/v1/audit/verify", summary="Verify the tamper-evident findings trail")
    def verify(
        who: Annotated[Principal, Depends(require("regulator", "auditor"))],
        participant: OptionalId = None,
    ) -> dict[str, Any]:
        return verified(participant, None)

    @app.post(
        "/api/v1/audit/verify",
        summary="Verify the findings trail against chain heads archived earlier (the output of 'audit heads')",
    )
    def verify_against(
        who: Annotated[Principal, Depends(require("regulator", "auditor"))],
        heads: Annotated[ArchivedHeads, Body(description="participant -> {seq, entry_hash}, as 'audit heads' writes")],
        participant: OptionalId = None,
    ) -> dict[str, Any]:
        return verified(participant, heads)

    add_overview_routes(app, history, live, principal, own)
    add_self_check_routes(app, history, live, principal, own, deny)

    app.mount("/console", StaticFiles(directory=CONSOLE), name="console")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(CONSOLE / "index.html")

    return app
