"""Small builders for tests: canonical event dicts and licences with chosen rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sandboxwatch.rules_engine.engine import Engine, event_order
from sandboxwatch.rules_engine.event_parser import event_from_dict
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.licence import Licence, load_licence, parse_licence

ROOT = Path(__file__).resolve().parent.parent
DA_NANG = ROOT / "config" / "licences" / "da-nang-pilot.yaml"
NATIONAL = ROOT / "config" / "licences" / "national-pilot.yaml"
PARTICIPANT = "p1"

HEADER = """licence:
  id: TEST-1
  participant: p1
  title: test
  legal_basis: test
  valid_from: 2025-09-01T00:00:00+07:00
  valid_until: 2026-08-31T23:59:59+07:00
  reporting_currency: VND
  reference_prices: {sources: [binance]}
rules:
"""


def licence_with(*rules: str) -> Licence:
    """A licence holding only the given rule lines (YAML flow mappings)."""
    return parse_licence(HEADER + "".join(f"  - {rule}\n" for rule in rules))


def da_nang() -> Licence:
    return load_licence(DA_NANG)


def ts(day: int = 1, hour: int = 10, minute: int = 0, second: int = 0, month: int = 10) -> str:
    return f"2025-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}+07:00"


_counter = iter(range(1, 10**9))


def ev(event_type: str, when: str | None = None, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "event_id": fields.pop("event_id", None) or f"e{next(_counter)}",
        "type": event_type,
        "participant": fields.pop("participant", PARTICIPANT),
        "ts": when or ts(),
    }
    row.update(fields)
    return row


def account(name: str = "c1", when: str | None = None, **fields: Any) -> dict[str, Any]:
    base = {
        "account": name,
        "kyc_status": "verified",
        "investor_class": "domestic",
        "bank_account_verified": True,
        "wallets": ["0xAA"],
        "site": "DN-SP2",
    }
    base.update(fields)
    return ev("account", when or ts(hour=1), **base)


def trade(
    name: str = "c1", when: str | None = None, quantity: str = "100", price: str = "26000", **fields: Any
) -> dict[str, Any]:
    base = {
        "account": name,
        "side": "buy",
        "base": "USDT",
        "quote": "VND",
        "quantity": quantity,
        "price": price,
        "site": "DN-SP2",
    }
    base.update(fields)
    return ev("trade", when, **base)


def funds(
    kind: str = "deposit", name: str = "c1", when: str | None = None, amount: str = "1000000", **fields: Any
) -> dict[str, Any]:
    base = {"account": name, "asset": "VND", "amount": amount, "rail": "bank", "site": "DN-SP2"}
    base.update(fields)
    return ev(kind, when, **base)


def onchain(
    kind: str = "withdrawal",
    name: str = "c1",
    when: str | None = None,
    amount: str = "100",
    address: str = "0xaa",
    **fields: Any,
) -> dict[str, Any]:
    base = {"asset": "USDT", "rail": "onchain", "chain": "ethereum", "address": address, "tx_hash": "0x01"}
    base.update(fields)
    return funds(kind, name, when, amount, **base)


def price(
    when: str | None = None, value: str = "26000", base: str = "USDT", source: str = "binance", **fields: Any
) -> dict[str, Any]:
    return ev("price", when or ts(hour=0), base=base, quote="VND", price=value, source=source, **fields)


def run(licence: Licence, rows: Iterable[dict[str, Any]], *, sort: bool = True) -> list[Finding]:
    events = [event_from_dict(json.loads(json.dumps(row))) for row in rows]
    if sort:
        events.sort(key=event_order)
    engine = Engine(licence)
    found: list[Finding] = []
    for event in events:
        found.extend(engine.process(event))
    found.extend(engine.flush())
    return found


def rules_of(findings: Iterable[Finding]) -> list[str]:
    return [f.rule for f in findings]


def sandboxwatch_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it: its own process, this checkout's code, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "sandboxwatch.cli", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False,
    )  # fmt: skip
