"""The notification recorder over HTTP and a real (embedded) ClickHouse: only Alertmanager (holding the
token) writes alert history, bad bodies are refused with the reason, and hostile text stays data."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandboxwatch.alerts.notification_recorder import MAX_BODY, TOKEN_ENV, NotificationRecorder, TokenError, load_token
from sandboxwatch.store.clickhouse_store import Store

pytest.importorskip("chdb")

TOKEN = "recorder-test-token-5f3a9c"


def alert(participant: str = "p1", **extra: Any) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": "SandboxwatchTxCap", "participant": participant, "severity": "breach"},
        "annotations": {"summary": "s"},
        "startsAt": "2025-11-10T03:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": "abc",
        **extra,
    }


def payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "status": "firing",
        "receiver": "regulator-desk",
        "groupKey": "{}:{}",
        "alerts": list(alerts),
    }


@pytest.fixture
def served(store: Store) -> Iterator[tuple[NotificationRecorder, int]]:
    recorder = NotificationRecorder(store, TOKEN)
    server = recorder.server("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield recorder, server.server_address[1]
    server.shutdown()
    server.server_close()


def post(port: int, body: bytes, token: str | None = TOKEN, path: str = "/notify/regulator-desk",
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    sent = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    conn.request("POST", path, body=body, headers={**sent, **(headers or {})})
    response = conn.getresponse()
    status, data = response.status, json.loads(response.read() or b"{}")
    conn.close()
    return status, data


def test_a_post_with_the_token_is_stored_once(served: tuple[NotificationRecorder, int]) -> None:
    recorder, port = served
    body = json.dumps(payload(alert())).encode()
    assert post(port, body) == (200, {"stored": 1})
    assert post(port, body)[1]["stored"] in (0, 1)  # a retry in the same second is stored once
    (row,) = recorder.history("p1")[:1]
    assert (row["receiver"], row["alertname"], row["severity"], row["status"]) == (
        "regulator-desk", "SandboxwatchTxCap", "breach", "firing",
    )  # fmt: skip


@pytest.mark.parametrize("token", [None, "", "wrong-token-000000000", TOKEN + "x", TOKEN[:-1]])
def test_posts_without_the_right_token_are_refused_and_store_nothing(
    served: tuple[NotificationRecorder, int], token: str | None
) -> None:
    recorder, port = served
    status, data = post(port, json.dumps(payload(alert())).encode(), token=token)
    assert status == 401 and data["detail"] == "missing or wrong bearer token"
    assert recorder.history() == []


def test_another_scheme_is_refused(served: tuple[NotificationRecorder, int]) -> None:
    recorder, port = served
    status, _ = post(
        port, json.dumps(payload(alert())).encode(), token=None, headers={"Authorization": f"Basic {TOKEN}"}
    )
    assert status == 401 and recorder.history() == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not an Alertmanager webhook payload"),
        (b"\xff\xfe", "not an Alertmanager webhook payload"),
        (b"[]", "the body must be a JSON object"),
        (json.dumps({"status": "firing"}).encode(), "alerts: must be a non-empty list"),
        (json.dumps(payload()).encode(), "alerts: must be a non-empty list"),
        (json.dumps(payload("x")).encode(), "alerts[0]: must be an object"),  # type: ignore[arg-type]
        (json.dumps(payload(alert(labels={"a": 1}))).encode(), "alerts[0].labels: must be an object of string labels"),
        (json.dumps(payload(alert(startsAt=5))).encode(), "alerts[0].startsAt: must be a string"),
        (json.dumps({**payload(alert()), "status": None}).encode(), "status: must be a string"),
        (json.dumps(payload(*[alert()] * 1001)).encode(), "alerts: more than 1000"),
        (b"[" * 100_000, "not an Alertmanager webhook payload"),
        (json.dumps(payload(alert(participant="\ud800"))).encode(), "no lone surrogates"),
    ],
)
def test_bad_payloads_are_refused_with_the_reason(
    served: tuple[NotificationRecorder, int], body: bytes, reason: str
) -> None:
    recorder, port = served
    status, data = post(port, body)
    assert status == 422 and reason in data["detail"]
    assert recorder.history() == []


def test_oversized_bodies_and_bad_paths_are_refused(served: tuple[NotificationRecorder, int]) -> None:
    recorder, port = served
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("POST", "/notify/regulator-desk")
    conn.putheader("Authorization", f"Bearer {TOKEN}")
    conn.putheader("Content-Length", str(MAX_BODY + 1))
    conn.endheaders()  # refused on the announced size, before a byte of the body is read
    assert conn.getresponse().status == 413
    conn.close()
    assert post(port, b"{}", headers={"Content-Length": "-1"})[0] == 413
    assert post(port, b"{}", path="/notify/")[0] == 404
    assert post(port, b"{}", path="/elsewhere/x")[0] == 404
    assert post(port, b"{}", path="/notify/" + "r" * 201)[0] == 404
    assert recorder.history() == []


def test_hostile_label_text_is_stored_as_data(served: tuple[NotificationRecorder, int]) -> None:
    recorder, port = served
    hostile = "p1' OR '1'='1"
    body = json.dumps(payload(alert(participant=hostile), alert(participant="p2"))).encode()
    assert post(port, body) == (200, {"stored": 2})
    assert [h["participant"] for h in recorder.history(hostile)] == [hostile]
    assert [h["participant"] for h in recorder.history("p2")] == ["p2"]
    assert recorder.history("p1") == []


def test_the_token_comes_from_a_file_or_the_environment_and_is_required(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    assert load_token(str(path), {}) == TOKEN
    assert load_token(None, {TOKEN_ENV: TOKEN}) == TOKEN
    with pytest.raises(TokenError, match="no bearer token"):
        load_token(None, {})
    with pytest.raises(TokenError, match="absent cannot be read: No such file"):
        load_token(str(tmp_path / "absent"), {})
    path.write_text("short\n")
    with pytest.raises(TokenError, match="at least 16"):
        load_token(str(path), {})
    with pytest.raises(TokenError, match="at least 16"):
        NotificationRecorder(None, "short")  # type: ignore[arg-type]
