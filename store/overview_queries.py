"""Read-side counts for the console's overview: findings per local day by severity, and the latest event.

Days are the pilots' local calendar days (Vietnam, UTC+7 all year, no daylight saving), the days a
regulator in Hanoi or Da Nang counts in; a finding at 23:30 UTC on the 1st belongs to the 2nd there. Counts
are of distinct finding ids, since the tables may hold a row twice until ClickHouse merges them."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.history import History, Scope
from sandboxwatch.store.sql_text import datetime_literal, in_list, quote

LOCAL_OFFSET = timedelta(hours=7)
_LOCAL_DAY = "toDate(ts + INTERVAL 7 HOUR)"


def findings_per_day(
    history: History, scope: Scope, participants: list[str], since: datetime, until: datetime,
    severities: tuple[str, ...] | None = None,
) -> list[tuple[str, date, str, int]]:  # fmt: skip
    """(participant, local day, severity, findings) for findings with event time in [since, until]."""
    if not participants:
        return []
    where = [
        scope.condition(),
        f"participant IN {in_list(participants)}",
        f"ts >= {datetime_literal(since)}",
        f"ts <= {datetime_literal(until)}",
    ]
    if severities is not None:
        where.append(f"severity IN {in_list(list(severities))}")
    rows = history.store.backend.rows(
        f"SELECT participant, toString({_LOCAL_DAY}) AS day, severity, uniqExact(finding_id) "
        f"FROM {history.db}.findings WHERE {' AND '.join(where)} "
        "GROUP BY participant, day, severity ORDER BY participant, day, severity"
    )
    return [(str(p), _as_date(d), str(s), int(n)) for p, d, s, n in rows]


def latest_event_time(
    history: History, scope: Scope, participant: str | None = None, not_after: datetime | None = None
) -> datetime | None:
    """The latest event time stored for the visible participants (or one of them), if any; ``not_after``
    leaves out events dated later (a mistyped year must not move a default window decades ahead)."""
    where = scope.condition() + (f" AND participant = {quote(participant)}" if participant else "")
    if not_after is not None:
        where += f" AND ts <= {datetime_literal(not_after)}"
    rows = history.store.backend.rows(f"SELECT count(), toString(max(ts)) FROM {history.db}.events WHERE {where}")
    if not rows or not int(rows[0][0]):
        return None
    return datetime.fromisoformat(str(rows[0][1]) + "+00:00")


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def events_version(store: Store, participant: str) -> tuple[int, str]:
    """What changes whenever a participant's stored events do: their number and the latest write."""
    rows = store.backend.rows(
        f"SELECT uniqExact(event_id), toString(max(recorded)) FROM {store.db}.events "
        f"WHERE participant = {quote(participant)}"
    )
    return (int(rows[0][0]), str(rows[0][1])) if rows else (0, "")
