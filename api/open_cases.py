"""Open cases by age, for the overview.

Every finding is a case, open until a regulator resolves it (api/case_workflow.py): a warning, breach or
critical finding whose case is not resolved counts, aged from its event time to the reference time."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sandboxwatch.store.case_trail import CaseTrail
from sandboxwatch.store.history import History, Scope
from sandboxwatch.store.overview_queries import LOCAL_OFFSET
from sandboxwatch.store.sql_text import STORE_MIN

OPEN_SEVERITIES = ("warning", "breach", "critical")
BUCKETS = (("d0_1", 0, 1), ("d1_7", 1, 7), ("d7_30", 7, 30), ("d30_plus", 30, None))
BASIS = "cases not resolved"


def bucket(age_days: int) -> str:
    for name, low, high in BUCKETS:
        if age_days >= low and (high is None or age_days < high):
            return name
    return BUCKETS[0][0]  # an item dated after the reference time is as new as it gets


Ages = dict[str, dict[str, dict[str, int]]]


def open_by_age(history: History, scope: Scope, participants: list[str], as_of: datetime) -> Ages:
    """participant -> age bucket -> severity -> open items, for items up to ``as_of``."""
    today = (as_of.astimezone(UTC) + LOCAL_OFFSET).date()
    out: Ages = {p: {name: dict.fromkeys(OPEN_SEVERITIES, 0) for name, _, _ in BUCKETS} for p in participants}
    cases = CaseTrail(history.store.backend, history.db)
    for participant, day, severity, count in cases.unresolved_per_day(
        scope, participants, STORE_MIN, as_of, OPEN_SEVERITIES
    ):
        out[participant][bucket(_age(today, day))][severity] += count
    return out


def _age(today: date, day: date) -> int:
    return (today - day).days
