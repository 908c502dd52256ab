"""Participant self-service: ``POST /api/v1/participants/{participant}/self-check`` with a JSONL or CSV file
of the participant's own events as the body, answered with the self-check result.

It is ``sandboxwatch check`` behind HTTP: the same reader (``read_events``, with its line bounds and format
detection), the same licence as the live monitor and the same run (``run_check``: event-time order, the
reorder buffer flushed at the end). Nothing is stored unless the participant asks (``store=true``); then the
valid events are written as its own events through the store's idempotent ``write_events``, and only when
every line was valid, so a half-stored file never has to be untangled. A file naming any other participant
is refused whole, with the line numbers, before anything is judged: a participant's upload is about itself
only. Bodies are bounded at ``MAX_UPLOAD`` (413 above it, by ``api.body_limit``)."""

# No "from __future__ import annotations": FastAPI reads these annotations at run time.
import io
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from sandboxwatch.api import finding_text, i18n
from sandboxwatch.api.keys import Principal
from sandboxwatch.api.live_state import LiveState
from sandboxwatch.api.overview import ID_MAX, TIME_MAX, Lang, _instant, language
from sandboxwatch.rules_engine.event_reader import bounded_lines, decode_events, detect_format, read_events
from sandboxwatch.rules_engine.events import Event, EventError
from sandboxwatch.rules_engine.licence import Licence
from sandboxwatch.rules_engine.self_check import run_check
from sandboxwatch.store.history import History
from sandboxwatch.store.records import EventRecord

MAX_UPLOAD = 20 * 1024 * 1024
UPLOAD_PATH = r"^/api/v1/participants/[^/]+/self-check$"
MAX_LISTED = 1000  # line numbers listed in a refusal; the count is always the full one


class Refused(Exception):
    def __init__(self, detail: dict[str, Any]) -> None:
        super().__init__(detail.get("reason"))
        self.detail = detail


def _lines(body: bytes) -> list[str]:
    stream = decode_events(io.BufferedReader(io.BytesIO(body)))
    return list(bounded_lines(stream))


def check_upload(
    licence: Licence,
    body: bytes,
    name: str,
    fmt: str | None,
    as_of: Any,
    store_as: str | None,
    history: History,
    language: str,
) -> dict[str, Any]:
    participant = licence.participant
    lines = _lines(body)
    first = next((line for line in lines if line.strip()), "")
    chosen = fmt or detect_format(name, first)
    source = f"upload:{name}"
    records = list(read_events(iter(lines), source, chosen))
    foreign = [n for n, item in records if item.participant is not None and item.participant != participant]
    if foreign:
        raise Refused(
            {
                "reason": f"{len(foreign)} line(s) are events of other participants; "
                f"upload only events of {participant}",
                "lines": foreign[:MAX_LISTED],
                "count": len(foreign),
            }
        )
    result = run_check(licence, records, as_of, source)
    errors = [{"line": e.line, "field": e.field, "reason": e.reason, "text": e.describe()} for e in result.errors]
    if not result.usable:
        raise Refused(
            {
                "reason": f"no valid event of participant {participant} was read "
                f"({len(result.errors)} invalid lines, read as {chosen})",
                "errors": errors[:MAX_LISTED],
            }
        )
    stored, not_stored = 0, None
    if store_as is not None:
        stored, not_stored = _store(history, records, lines, chosen, store_as, name, bool(result.errors))
    findings = finding_text.localise([f.to_dict() for f in result.findings], language)
    stats = result.stats
    return {
        "participant": participant,
        "licence": licence.id,
        "format": chosen,
        "events": stats.events,
        "invalid": len(result.errors),
        "duplicates": stats.duplicates,
        "failed": result.failed,
        "findings_by_severity": {s: n for s, n in stats.findings.items() if n},
        "findings": findings,
        "errors": errors,
        "stored": stored,
        "not_stored": not_stored,
        "summary": i18n.text(
            language,
            "ui.upload.summary",
            events=i18n.number(Decimal(stats.events), language),
            licence=licence.id,
            findings=i18n.number(Decimal(len(findings)), language),
            invalid=i18n.number(Decimal(len(result.errors)), language),
        ),
    }


def _store(
    history: History, records: list[tuple[int, Event | EventError]], lines: list[str], fmt: str, who: str,
    name: str, had_errors: bool,
) -> tuple[int, str | None]:  # fmt: skip
    if had_errors:
        return 0, "the file has invalid lines: fix them and upload again to store it"
    if fmt != "jsonl":
        return 0, "only JSONL uploads can be stored (the store keeps each event as the JSON it arrived as)"
    kept = [
        EventRecord(item, lines[number - 1].strip(), f"upload:{who}:{name}:{number}")
        for number, item in records
        if isinstance(item, Event)
    ]
    return len(history.store.write_events(kept)), None


def add_self_check_routes(
    app: FastAPI,
    history: History,
    live: LiveState,
    principal: Callable[..., Principal],
    own: Callable[[Request, Principal, str | None], None],
    deny: Callable[[Request, Principal | None, int, str], Exception],
) -> None:
    Caller = Annotated[Principal, Depends(principal)]

    @app.post(
        "/api/v1/participants/{participant}/self-check",
        summary="Self-check a JSONL or CSV file of the participant's own events (the body, at most 20 MiB)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-ndjson": {"schema": {"type": "string"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def self_check(
        request: Request,
        who: Caller,
        participant: Annotated[str, PathParam(min_length=1, max_length=ID_MAX)],
        format: Literal["jsonl", "csv"] | None = None,
        store: bool = False,
        name: Annotated[str, Query(max_length=ID_MAX, description="the file's name, for messages")] = "events",
        as_of: Annotated[str | None, Query(max_length=TIME_MAX, description="judge deadlines at this time")] = None,
        lang: Lang = None,
    ) -> dict[str, Any]:
        if who.role not in ("participant", "regulator"):
            raise deny(request, who, 403, f"the {who.role} role may not do this")
        own(request, who, participant)
        if store and who.role != "participant":
            raise deny(request, who, 403, "only the participant itself may store its events")
        if not live.licensed(participant):
            raise HTTPException(404, f"no licence loaded for {participant}")
        when = _instant(as_of, "as_of")
        body = await request.body()
        if not body.strip():
            raise HTTPException(422, {"reason": "the file is empty"})
        chosen = language(request, lang)
        licence = live.licences[participant]
        try:
            return await run_in_threadpool(
                check_upload, licence, body, name, format, when, participant if store else None, history, chosen
            )
        except Refused as exc:
            raise HTTPException(422, exc.detail) from None
