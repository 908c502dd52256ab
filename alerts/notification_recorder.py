"""Records every Alertmanager notification (firing and resolved) in ClickHouse.

Alertmanager keeps no history; auditors need to know who was alerted about what, and when. Each
receiver in the generated Alertmanager config posts to ``/notify/<receiver>`` here; one row is kept per
alert per notification. A delivery Alertmanager retries with the same body in the same second is
stored once."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from store.clickhouse_store import Store

log = logging.getLogger(__name__)

COLUMNS = (
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


def notification_rows(receiver: str, payload: dict[str, Any], received: datetime) -> list[tuple[Any, ...]]:
    rows = []
    for alert in payload.get("alerts") or []:
        labels = alert.get("labels") or {}
        body = json.dumps(alert, sort_keys=True)
        stamp = received.replace(microsecond=0).isoformat()
        ident = hashlib.sha256(f"{receiver}\n{payload.get('groupKey', '')}\n{body}\n{stamp}".encode()).hexdigest()
        rows.append(
            (
                ident[:32],
                receiver,
                str(payload.get("status", "")),
                str(alert.get("status", "")),
                str(labels.get("alertname", "")),
                str(labels.get("participant", "")),
                str(labels.get("severity", "")),
                str(labels.get("rule", "")),
                str(alert.get("fingerprint", "")),
                str(alert.get("startsAt", "")),
                str(alert.get("endsAt", "")),
                str(payload.get("groupKey", "")),
                received.replace(microsecond=0),
                body,
            )
        )
    return rows


class NotificationRecorder:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()  # one ClickHouse connection, many handler threads

    def record(self, receiver: str, payload: dict[str, Any]) -> int:
        rows = notification_rows(receiver, payload, datetime.now(UTC))
        with self._lock:
            ids = [row[0] for row in rows]
            present = {
                str(r[0])
                for r in self.store.backend.rows(
                    f"SELECT notification_id FROM {self.store.db}.alert_notifications WHERE notification_id IN "
                    + "(" + ", ".join(f"'{i}'" for i in ids) + ")"
                )
            } if ids else set()  # fmt: skip
            fresh = [row for row in rows if row[0] not in present]
            self.store.backend.insert("alert_notifications", COLUMNS, fresh)
        return len(fresh)

    def history(self, participant: str | None = None) -> list[dict[str, str]]:
        where = f"WHERE participant = '{participant}'" if participant else ""
        with self._lock:
            rows = self.store.backend.rows(
                f"SELECT receiver, alert_status, alertname, participant, severity, toString(received) "
                f"FROM {self.store.db}.alert_notifications {where} ORDER BY received, notification_id"
            )
        names = ("receiver", "status", "alertname", "participant", "severity", "received")
        return [dict(zip(names, map(str, row), strict=True)) for row in rows]

    def server(self, host: str, port: int) -> ThreadingHTTPServer:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                if len(parts) != 2 or parts[0] != "notify" or not parts[1]:
                    self.send_error(404, "post to /notify/<receiver>")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    payload = json.loads(self.rfile.read(length))
                    if not isinstance(payload, dict):
                        raise ValueError("payload is not a JSON object")
                    stored = recorder.record(parts[1], payload)
                except ValueError as exc:
                    self.send_error(400, f"not an Alertmanager webhook payload: {exc}")
                    return
                except Exception:
                    log.exception("notification could not be recorded")
                    # 5xx makes Alertmanager retry: the notification is not lost.
                    self.send_error(503, "store unavailable")
                    return
                body = json.dumps({"stored": stored}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        return ThreadingHTTPServer((host, port), Handler)
