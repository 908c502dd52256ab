"""A local stand-in for the venue's HTTP API, replaying recorded Binance-format responses.

It answers like the real endpoints do (filters by symbol, startTime/endTime, limit; newest-first history
for deposits), so ccxt's real request building and parsing run unchanged. ``stage`` moves the recording
forward (new trades appear, pending deposits complete); ``faults`` makes the next calls to a path fail
with an HTTP status or stall past the client's timeout, to exercise the connector's backoff."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).parent / "fixtures" / "exchange" / "binance"
HOST = "/api.binance.com"


NINETY_DAYS_MS = 90 * 86_400_000


class ReplayError(Exception):
    """The venue refusing a request, with its HTTP status and error body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status, self.body = status, body


@dataclass
class Fault:
    path: str
    status: int = 0
    delay_s: float = 0.0
    body: str = ""
    times: int = 1


def _staged(records: list[dict[str, Any]], stage: int) -> list[dict[str, Any]]:
    visible = []
    for record in records:
        if record.get("_from_stage", 0) > stage:
            continue
        out = {k: v for k, v in record.items() if not k.startswith("_")}
        for at, changes in sorted(record.get("_stages", {}).items()):
            if int(at) <= stage:
                out.update(changes)
        visible.append(out)
    return visible


def _apply_time_ms(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp() * 1000)


class ExchangeReplay:
    HOST = HOST
    FIXTURES = FIXTURES
    NAMES: tuple[str, ...] = ("exchangeInfo", "myTrades", "deposits", "withdrawals", "tickers")

    def __init__(self, fixtures: Path | None = None) -> None:
        self.stage = 0
        self.faults: list[Fault] = []
        self.requests: list[str] = []
        self.queries: list[tuple[str, dict[str, str]]] = []
        # Serve each list response in the opposite order (the same records): the connector must not care.
        self.reverse_pages = False
        folder = fixtures or self.FIXTURES
        self._data = {name: json.loads((folder / f"{name}.json").read_text()) for name in self.NAMES}
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                replay._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, name: str, records: list[dict[str, Any]]) -> None:
        """More recorded records (``myTrades``, ``deposits``, ``withdrawals``), e.g. after a long quiet spell."""
        self._data[name].extend(copy.deepcopy(records))

    def fail(self, path: str, status: int = 0, delay_s: float = 0.0, body: str = "", times: int = 1) -> None:
        self.faults.append(Fault(path, status, delay_s, body, times))

    def _fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.path in path and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        self.requests.append(parts.path)
        fault = self._fault(parts.path)
        if fault and fault.delay_s:
            time.sleep(fault.delay_s)
        if fault and fault.status:
            self._send(handler, fault.status, fault.body or json.dumps({"code": -1003, "msg": "Too many requests."}))
            return
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path.removeprefix(self.HOST)
        self.queries.append((path, query))
        route = self._routes(query).get(path)
        if route is None:
            self._send(handler, 404, json.dumps({"code": -1100, "msg": f"no recording for {path}"}))
            return
        try:
            body = route()
        except ReplayError as exc:
            self._send(handler, exc.status, json.dumps(exc.body))
            return
        if self.reverse_pages and isinstance(body, list):
            body = body[::-1]
        self._send(handler, 200, json.dumps(self._wrap(body)))

    def _wrap(self, body: Any) -> Any:
        """The venue's response envelope around a route's answer (Binance has none)."""
        return body

    def _routes(self, query: dict[str, str]) -> dict[str, Callable[[], Any]]:
        return {
            "/api/v3/exchangeInfo": lambda: self._data["exchangeInfo"],
            "/api/v3/myTrades": lambda: self._trades(query),
            "/sapi/v1/capital/deposit/hisrec": lambda: self._history("deposits", "insertTime", query),
            "/sapi/v1/capital/withdraw/history": lambda: self._history("withdrawals", "applyTime", query),
            "/api/v3/ticker/24hr": lambda: self._ticker(query),
        }

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: str) -> None:
        data = body.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _trades(self, query: dict[str, str]) -> list[dict[str, Any]]:
        """Binance's rules: ``fromId`` (trades with id >= it, by id) excludes ``startTime``/``endTime``; with
        ``startTime`` the oldest trades since then (inclusive); ``limit`` at most 1000."""
        trades = [t for t in _staged(self._data["myTrades"], self.stage) if t["symbol"] == query.get("symbol")]
        limit = int(query.get("limit", 500))
        if limit > 1000:
            raise ReplayError(400, {"code": -1100, "msg": "Illegal characters found in parameter 'limit'."})
        if "fromId" in query:
            if "startTime" in query or "endTime" in query:
                raise ReplayError(400, {"code": -1128, "msg": "Combination of optional parameters invalid."})
            chosen = sorted((t for t in trades if t["id"] >= int(query["fromId"])), key=lambda t: t["id"])
            return chosen[:limit]
        start, end = int(query.get("startTime", 0)), int(query.get("endTime", 2**62))
        trades = sorted((t for t in trades if start <= t["time"] <= end), key=lambda t: (t["time"], t["id"]))
        return trades[:limit]

    def _history(self, name: str, time_field: str, query: dict[str, str]) -> list[dict[str, Any]]:
        """Binance's capital history: a span of at most 90 days, newest first, at most ``limit`` (1000)."""
        start, end = int(query.get("startTime", 0)), int(query.get("endTime", 2**62))
        if "startTime" in query and "endTime" in query and end - start > NINETY_DAYS_MS:
            raise ReplayError(400, {"code": -4047, "msg": "Time interval must be within 0-90 days"})
        limit = int(query.get("limit", 1000))

        def ms(record: dict[str, Any]) -> int:
            value = record[time_field]
            return value if isinstance(value, int) else _apply_time_ms(value)

        records = [r for r in _staged(self._data[name], self.stage) if start <= ms(r) <= end]
        return sorted(records, key=ms, reverse=True)[:limit]

    def _ticker(self, query: dict[str, str]) -> dict[str, Any]:
        recorded = self._data["tickers"][query["symbol"]]
        current = [t for t in recorded if t["_stage"] <= self.stage][-1]
        return {k: v for k, v in copy.deepcopy(current).items() if not k.startswith("_")}
