"""The console's overview and plain-language limits: ``GET /api/v1/overview`` and
``GET /api/v1/participants/{participant}/limits``.

A regulator or auditor sees every participant side by side; a participant's key sees only its own (the scope
is applied in every query, and asking for another participant by name is refused and recorded). Texts come
in the caller's language (``lang`` query parameter, else ``Accept-Language``)."""

# No "from __future__ import annotations": FastAPI reads these annotations at run time.
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam

from sandboxwatch.api import i18n
from sandboxwatch.api.keys import Principal
from sandboxwatch.api.live_state import LiveState
from sandboxwatch.api.open_cases import BASIS, BUCKETS, OPEN_SEVERITIES, open_by_age
from sandboxwatch.api.plain_limits import read, readings, six_places
from sandboxwatch.api.utilisation_history import daily_use, local_day
from sandboxwatch.rules_engine.findings import SEVERITIES
from sandboxwatch.rules_engine.timestamps import parse_timestamp
from sandboxwatch.store.history import History
from sandboxwatch.store.overview_queries import findings_per_day, latest_event_time

ID_MAX = 200
TIME_MAX = 64
DEFAULT_DAYS = 30
MAX_DAYS = 366
Lang = Annotated[str | None, Query(description="en or vi; default from Accept-Language", pattern="^(en|vi)$")]


def language(request: Request, lang: str | None) -> str:
    return i18n.pick_language(lang, request.headers.get("accept-language"))


def _instant(value: str | None, name: str) -> datetime | None:
    if value is None:  # as_of= (a client's unset variable) is refused, never taken for "none given"
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError) as exc:
        raise HTTPException(422, f"{name}: {exc}") from None


def add_overview_routes(
    app: FastAPI,
    history: History,
    live: LiveState,
    principal: Callable[..., Principal],
    own: Callable[[Request, Principal, str | None], None],
) -> None:
    Caller = Annotated[Principal, Depends(principal)]

    @app.get(
        "/api/v1/participants/{participant}/limits",
        summary="Each participant-level licence limit in plain words, with its direction, band and clause",
    )
    def limits(
        request: Request,
        who: Caller,
        participant: Annotated[str, PathParam(min_length=1, max_length=ID_MAX)],
        lang: Lang = None,
    ) -> list[dict[str, Any]]:
        own(request, who, participant)
        if not live.licensed(participant):
            raise HTTPException(404, f"no licence loaded for {participant}")
        licence = live.licences[participant]
        chosen = language(request, lang)
        return [r.to_dict(chosen) for r in readings(licence, live.engine(participant).utilisation())]

    @app.get(
        "/api/v1/overview",
        summary="Per participant: findings per day by severity, open items by age, limits over time with clauses",
    )
    def overview(
        request: Request,
        who: Caller,
        participant: Annotated[str | None, Query(max_length=ID_MAX)] = None,
        since: Annotated[str | None, Query(alias="from", max_length=TIME_MAX, description="RFC 3339")] = None,
        until: Annotated[
            str | None, Query(alias="to", max_length=TIME_MAX, description="RFC 3339; default the latest event")
        ] = None,
        lang: Lang = None,
    ) -> dict[str, Any]:
        own(request, who, participant)
        chosen = language(request, lang)
        scope = who.scope
        visible = history.participants(scope)
        shown = [p for p in visible if participant is None or p == participant]
        # Default: the 30 days up to the latest event (not one dated in the future), else up to now.
        now = datetime.now(UTC)
        end = _instant(until, "to") or latest_event_time(history, scope, participant, now) or now
        start = _instant(since, "from") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise HTTPException(422, "from: after to")
        first_day, last_day = local_day(start), local_day(end)
        if (last_day - first_day).days >= MAX_DAYS:
            raise HTTPException(422, f"from/to: at most {MAX_DAYS} days at once")
        days = [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]
        counts: dict[tuple[str, date, str], int] = {
            (p, d, s): n for p, d, s, n in findings_per_day(history, scope, shown, start, end)
        }
        ages = open_by_age(history, scope, shown, end)
        return {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "language": chosen,
            "days": [d.isoformat() for d in days],
            "day_labels": [i18n.day(d, chosen) for d in days],
            "open_basis": BASIS,
            "participants": [_participant(p, days, counts, ages[p], chosen) for p in shown],
        }

    def _participant(
        participant: str,
        days: list[date],
        counts: dict[tuple[str, date, str], int],
        ages: dict[str, dict[str, int]],
        chosen: str,
    ) -> dict[str, Any]:
        per_day = {s: [counts.get((participant, d, s), 0) for d in days] for s in SEVERITIES}
        open_items = [
            {
                "bucket": name,
                "label": i18n.text(chosen, f"ui.age.{name}"),
                **{s: ages[name][s] for s in OPEN_SEVERITIES},
                "total": sum(ages[name].values()),
            }
            for name, _, _ in BUCKETS
        ]
        licence = live.licences.get(participant)
        limits: list[dict[str, Any]] = []
        if licence is not None:
            series: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for sample in daily_use(history.store, licence, days[0], days[-1]):
                reading = read(licence, sample.rule, sample.limit, sample.share)
                level = reading.level
                series.setdefault((sample.rule, sample.limit), []).append(
                    {
                        "day": sample.day.isoformat(),
                        "share": format(sample.share, "f"),
                        "level": None if level is None else format(six_places(level), "f"),
                        "band": reading.band,
                    }
                )
            current = readings(licence, live.engine(participant).utilisation())
            for reading in current:
                limits.append({**reading.to_dict(chosen), "series": series.pop((reading.rule, reading.limit), [])})
        return {
            "participant": participant,
            "licence": None if licence is None else licence.id,
            "findings_per_day": per_day,
            "findings_total": sum(sum(v) for v in per_day.values()),
            "open_by_age": open_items,
            "open_total": sum(item["total"] for item in open_items),
            "limits": limits,
        }
