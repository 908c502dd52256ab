"""The ``alert_notifications`` table: every Alertmanager notification the recorder received.

The recorder (alerts/notification_recorder.py) turns a webhook post into rows; storing them once and
reading them back are the store's queries, here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.sql_text import in_list, quote

NOTIFICATION_COLUMNS = (
    "notification_id",
    "receiver",
    "status",
    "alert_status",
    "alertname",
    "participant",
    "severity",
    "rule",
    "fingerprint",
    "starts_at",
    "ends_at",
    "group_key",
    "received",
    "alert",
)
HISTORY_FIELDS = ("receiver", "status", "alertname", "participant", "severity", "received")


def write_notifications(store: Store, rows: Sequence[Sequence[Any]]) -> int:
    """Inserts the rows (in ``NOTIFICATION_COLUMNS`` order, the id first) whose id is not stored yet: a
    delivery Alertmanager retries is stored once. Returns how many were new."""
    ids = [str(row[0]) for row in rows]
    present = {
        str(r[0])
        for r in store.backend.rows(
            f"SELECT notification_id FROM {store.db}.alert_notifications WHERE notification_id IN {in_list(ids)}"
        )
    }
    fresh = [row for row in rows if row[0] not in present]
    store.backend.insert("alert_notifications", NOTIFICATION_COLUMNS, fresh)
    return len(fresh)


def notification_history(store: Store, participant: str | None = None) -> list[dict[str, str]]:
    """Every stored notification (or one participant's), oldest first, as ``HISTORY_FIELDS``."""
    where = f"WHERE participant = {quote(participant)}" if participant else ""
    rows = store.backend.rows(
        f"SELECT receiver, alert_status, alertname, participant, severity, toString(received) "
        f"FROM {store.db}.alert_notifications {where} ORDER BY received, notification_id"
    )
    return [dict(zip(HISTORY_FIELDS, map(str, row), strict=True)) for row in rows]
