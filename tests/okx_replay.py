"""The replay server speaking OKX v5: ``{"code": "0", "data": [...]}`` envelopes, newest-first history with at
most 100 records, fills filtered by inclusive ``begin``/``end``, deposit and withdrawal history by exclusive
``before``/``after`` (ccxt sends ``before = since - 1``). Shapes follow ccxt's own OKX parser and OKX's docs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.exchange_replay import ExchangeReplay, ReplayError, _staged

OKX_PAGE = 100


class OkxReplay(ExchangeReplay):
    HOST = "/www.okx.com"
    FIXTURES = Path(__file__).parent / "fixtures" / "exchange" / "okx"
    NAMES = ("instruments", "currencies", "fills", "deposits", "withdrawals", "tickers")

    def _wrap(self, body: Any) -> Any:
        return {"code": "0", "msg": "", "data": body}

    def _routes(self, query: dict[str, str]) -> dict[str, Callable[[], Any]]:
        return {
            "/api/v5/public/instruments": lambda: self._data["instruments"] if query.get("instType") == "SPOT" else [],
            "/api/v5/asset/currencies": lambda: self._data["currencies"],
            "/api/v5/trade/fills-history": lambda: self._fills(query),
            "/api/v5/asset/deposit-history": lambda: self._okx_history("deposits", query),
            "/api/v5/asset/withdrawal-history": lambda: self._okx_history("withdrawals", query),
            "/api/v5/market/ticker": lambda: self._okx_ticker(query),
        }

    @staticmethod
    def _limit(query: dict[str, str]) -> int:
        limit = int(query.get("limit", OKX_PAGE))
        if limit > OKX_PAGE:
            raise ReplayError(400, {"code": "51000", "msg": "Parameter limit error", "data": []})
        return limit

    def _fills(self, query: dict[str, str]) -> list[dict[str, Any]]:
        if query.get("instType") != "SPOT":
            raise ReplayError(400, {"code": "51000", "msg": "Parameter instType error", "data": []})
        begin, end = int(query.get("begin", 0)), int(query.get("end", 2**62))
        fills = [
            f for f in _staged(self._data["fills"], self.stage)
            if f["instId"] == query.get("instId") and begin <= int(f["ts"]) <= end
        ]  # fmt: skip
        fills.sort(key=lambda f: (int(f["ts"]), int(f["billId"])), reverse=True)
        return fills[: self._limit(query)]

    def _okx_history(self, name: str, query: dict[str, str]) -> list[dict[str, Any]]:
        newer_than, older_than = int(query.get("before", -1)), int(query.get("after", 2**62))
        records = [r for r in _staged(self._data[name], self.stage) if newer_than < int(r["ts"]) < older_than]
        records.sort(key=lambda r: int(r["ts"]), reverse=True)
        return records[: self._limit(query)]

    def _okx_ticker(self, query: dict[str, str]) -> list[dict[str, Any]]:
        recorded = self._data["tickers"][query["instId"]]
        current = [t for t in recorded if t["_stage"] <= self.stage][-1]
        return [{k: v for k, v in copy.deepcopy(current).items() if not k.startswith("_")}]
