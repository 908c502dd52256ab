"""Records every Alertmanager notification (firing and resolved) in ClickHouse.

Alertmanager keeps no history; auditors need to know who was alerted about what, and when. Each
receiver in the generated Alertmanager config posts to ``/notify/<receiver>`` here; one row is kept per
alert per notification. A delivery Alertmanager retries with the same body in the same second is
stored once.

What is stored is alert history an auditor relies on, so nobody else may write it: every post must carry
the shared bearer token (Alertmanager sends it from ``http_config.authorization.credentials_file``), and
the body must be a webhook payload of bounded size and shape. A refused post is answered 401/413/422 and
logged; only a store failure answers 5xx, which makes Alertmanager retry instead of losing the
notification."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandboxwatch.rules_engine.input_files import InputFileError, read_text_file
from sandboxwatch.rules_engine.json_bounds import loads_bounded
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.notifications import notification_history, write_notifications

log = logging.getLogger(__name__)

TOKEN_ENV = "SANDBOXWATCH_RECORDER_TOKEN"
# An Alertmanager payload nests 4 levels (alerts -> alert -> labels); deeper is no payload (json_bounds).
MAX_DEPTH = 16
MAX_BODY = 1024 * 1024  # Alertmanager caps a webhook at a few hundred alerts; this is far above that
MAX_ALERTS = 1000
MAX_RECEIVER = 200
MIN_TOKEN = 16
MAX_TOKEN_FILE_BYTES = 64 << 10  # a token is a line; a file of kilobytes is not one


class TokenError(ValueError):
    """The recorder has no usable token, so it must not start (it would accept anyone's posts)."""


class PayloadError(ValueError):
    """The body is not an Alertmanager webhook payload; the message says which part and why."""


def load_token(token_file: str | None, environ: dict[str, str] | None = None) -> str:
    """The shared token from ``--token-file`` or ``SANDBOXWATCH_RECORDER_TOKEN``; refuses a missing or short one."""
    env = os.environ if environ is None else environ
    if token_file:
        try:
            token = read_text_file(token_file, MAX_TOKEN_FILE_BYTES, "--token-file").strip()
        except InputFileError as exc:
            raise TokenError(str(exc)) from None
        where = f"--token-file {token_file}"
    else:
        token = env.get(TOKEN_ENV, "").strip()
        where = TOKEN_ENV
        if not token:
            raise TokenError(
                f"no bearer token: pass --token-file or set {TOKEN_ENV} (the same token Alertmanager sends)"
            )
    if len(token) < MIN_TOKEN or any(c.isspace() or not c.isprintable() for c in token):
        raise TokenError(f"{where}: the token must be at least {MIN_TOKEN} printable characters without spaces")
    return token


def _text(value: Any, where: str, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise PayloadError(f"{where}: must be a string")
    return value


def _labels(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise PayloadError(f"{where}: must be an object of string labels")
    return value


@dataclass(frozen=True, slots=True)
class Payload:
    """The parts of a webhook body (Alertmanager's version 4 format) the recorder stores."""

    status: str
    group_key: str
    alerts: tuple[dict[str, Any], ...]

    @classmethod
    def parse(cls, raw: Any) -> Payload:
        if not isinstance(raw, dict):
            raise PayloadError("the body must be a JSON object")
        try:  # a lone surrogate (\ud800 is valid JSON) cannot be stored: refuse it here, not as a store failure
            json.dumps(raw, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise PayloadError("text must be valid Unicode (no lone surrogates)") from None
        alerts = raw.get("alerts")
        if not isinstance(alerts, list) or not alerts:
            raise PayloadError("alerts: must be a non-empty list")
        if len(alerts) > MAX_ALERTS:
            raise PayloadError(f"alerts: more than {MAX_ALERTS}")
        for index, alert in enumerate(alerts):
            where = f"alerts[{index}]"
            if not isinstance(alert, dict):
                raise PayloadError(f"{where}: must be an object")
            _labels(alert.get("labels"), f"{where}.labels")
            _labels(alert.get("annotations"), f"{where}.annotations")
            for name in ("status", "fingerprint", "startsAt", "endsAt", "generatorURL"):
                _text(alert.get(name), f"{where}.{name}")
        return cls(
            status=_text(raw.get("status"), "status", required=True),
            group_key=_text(raw.get("groupKey"), "groupKey"),
            alerts=tuple(alerts),
        )


def notification_rows(receiver: str, payload: Payload, received: datetime) -> list[tuple[Any, ...]]:
    rows = []
    for alert in payload.alerts:
        labels = alert.get("labels") or {}
        body = json.dumps(alert, sort_keys=True)
        stamp = received.replace(microsecond=0).isoformat()
        ident = hashlib.sha256(f"{receiver}\n{payload.group_key}\n{body}\n{stamp}".encode()).hexdigest()
        rows.append(
            (
                ident[:32],
                receiver,
                payload.status,
                str(alert.get("status") or ""),
                str(labels.get("alertname", "")),
                str(labels.get("participant", "")),
                str(labels.get("severity", "")),
                str(labels.get("rule", "")),
                str(alert.get("fingerprint") or ""),
                str(alert.get("startsAt") or ""),
                str(alert.get("endsAt") or ""),
                payload.group_key,
                received.replace(microsecond=0),
                body,
            )
        )
    return rows


class NotificationRecorder:
    def __init__(self, store: Store, token: str) -> None:
        if len(token) < MIN_TOKEN:
            raise TokenError(f"the token must be at least {MIN_TOKEN} characters")
        self.store = store
        self._token = token.encode()
        self._lock = threading.Lock()  # one ClickHouse connection, many handler threads

    def authorised(self, header: str | None) -> bool:
        scheme, _, credentials = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), self._token)

    def record(self, receiver: str, payload: Payload) -> int:
        rows = notification_rows(receiver, payload, datetime.now(UTC))
        with self._lock:
            return write_notifications(self.store, rows)

    def history(self, participant: str | None = None) -> list[dict[str, str]]:
        with self._lock:
            return notification_history(self.store, participant)

    def server(self, host: str, port: int) -> ThreadingHTTPServer:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 30  # seconds a client may stall mid-request before its thread is freed

            def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _refuse(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
                log.warning("refused %s %s from %s: %s", self.command, self.path, self.client_address[0], reason)
                self.close_connection = True  # the unread body must not be taken for the next request
                self._answer(status, {"detail": reason}, headers)

            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                if len(parts) != 2 or parts[0] != "notify" or not parts[1] or len(parts[1]) > MAX_RECEIVER:
                    self._refuse(404, "post to /notify/<receiver>")
                    return
                if not recorder.authorised(self.headers.get("Authorization")):
                    self._refuse(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
                    return
                try:
                    length = int(self.headers.get("Content-Length") or "")
                except ValueError:
                    self._refuse(411, "Content-Length is required")
                    return
                if length < 0 or length > MAX_BODY:
                    self._refuse(413, f"the body must be at most {MAX_BODY} bytes")
                    return
                try:
                    payload = Payload.parse(loads_bounded(self.rfile.read(length), MAX_DEPTH))
                except (ValueError, RecursionError) as exc:  # PayloadError, bad JSON or UTF-8, absurd nesting
                    self._refuse(422, f"not an Alertmanager webhook payload: {exc}")
                    return
                try:
                    stored = recorder.record(parts[1], payload)
                except Exception:
                    log.exception("notification could not be recorded")
                    # 5xx makes Alertmanager retry: the notification is not lost.
                    self._answer(503, {"detail": "store unavailable"})
                    return
                self._answer(200, {"stored": stored})

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        return ThreadingHTTPServer((host, port), Handler)
