"""Adversary pass over issue 18's throughput changes (the parser's remembered values and its count of present
fields, the price book's sliding band, the zone-sharing unpickler). No bug was found; these tests keep the
probes that held and that no other test makes in this form:

- an extra field next to a missing or null optional one: the fast path knows an object has no extra field by
  counting the fields it found present, so a missing optional field must never let an unknown one through
  uncounted (it would vanish from ``extra``, which the contract keeps);
- the engine's findings with the band equal those of an engine that scans every window (the old code's
  ``range_from``), on streams with late prices (within and beyond allowed_lateness), equal prices written
  differently ('26000' / '26000.0' / '26000.00'), prices of other participants and untrusted sources, and a
  snapshot restored mid-stream through the zone-sharing unpickler."""

from __future__ import annotations

import json
import pickle
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from sandboxwatch.rules_engine import zone_sharing_pickle
from sandboxwatch.rules_engine.engine import Engine
from sandboxwatch.rules_engine.event_fast_path import FIELDS
from sandboxwatch.rules_engine.event_parser import event_from_dict
from sandboxwatch.rules_engine.events import Event
from sandboxwatch.rules_engine.facts import PriceBook
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.licence import parse_licence
from tests.test_event_fast_path import generic_only

_ENVELOPE = {"event_id": "e1", "participant": "p1", "ts": "2025-11-10T12:00:00+07:00", "site": "s1"}
_VALID: dict[str, dict[str, Any]] = {
    "account": {"account": "acc-1", "kyc_status": "verified", "investor_class": "domestic",
                "bank_account_verified": True, "wallets": ["0xabc"]},
    "trade": {"account": "acc-1", "side": "buy", "base": "BTC", "quote": "VND", "quantity": "1", "price": "100",
              "counterparty_account": "acc-2", "fee": "1", "fee_asset": "VND"},
    "deposit": {"account": "acc-1", "asset": "USDT", "amount": "5", "rail": "onchain", "chain": "eth",
                "address": "0xabc", "tx_hash": "0xdef",
                "travel_rule": {"originator": {"name": "A", "account": "a"},
                                "beneficiary": {"name": "B", "account": "b"}},
                "fee": "0.1", "fee_asset": "USDT", "completed_ts": "2025-11-10T12:05:00+07:00"},
    "withdrawal": {"account": "acc-1", "asset": "VND", "amount": "5", "rail": "bank", "chain": "eth",
                   "address": "0xabc", "tx_hash": "0xdef", "fee": "1", "fee_asset": "VND",
                   "completed_ts": "2025-11-10T12:05:00+07:00"},
    "transfer": {"chain": "eth", "tx_hash": "0xdef", "log_index": 0, "block": 5, "from": "0xa", "to": "0xb",
                 "asset": "USDT", "amount": "3", "token": "0xt"},
    "price": {"base": "BTC", "quote": "VND", "price": "100", "source": "feed"},
    "reserve": {"asset": "USDT", "custody_balance": "10", "client_liabilities": "0"},
}  # fmt: skip
# Every field a valid object of the type may leave out (null or absent), the envelope's site included.
_OPTIONAL = {
    "account": ("site", "bank_account_verified", "wallets"),
    "trade": ("site", "counterparty_account", "fee", "fee_asset"),
    "deposit": ("site", "travel_rule", "fee", "fee_asset", "completed_ts"),
    "withdrawal": ("site", "chain", "address", "tx_hash", "fee", "fee_asset", "completed_ts"),
    "transfer": ("site", "token"),
    "price": ("site",),
    "reserve": ("site",),
}


def _cases() -> list[tuple[str, tuple[str, ...], str]]:
    cases: list[tuple[str, tuple[str, ...], str]] = []
    for event_type, optional in _OPTIONAL.items():
        for left_out in optional:
            # fee without fee_asset is refused: leave both out together.
            group = ("fee", "fee_asset") if left_out in ("fee", "fee_asset") else (left_out,)
            cases += [(event_type, group, "absent"), (event_type, group, "null")]
    return cases


def test_the_table_of_optional_fields_covers_every_fast_type() -> None:
    assert set(_OPTIONAL) == set(_VALID) == set(FIELDS)


@pytest.mark.parametrize(("event_type", "left_out", "how"), _cases())
def test_an_extra_field_beside_a_missing_or_null_optional_one_is_kept(
    event_type: str, left_out: tuple[str, ...], how: str
) -> None:
    for extras in ({"zz_extra": 1}, {"zz_extra": None}, {"zz_a": "x", "zz_b": [1]}):
        obj: dict[str, Any] = {**_ENVELOPE, "type": event_type, **_VALID[event_type]}
        for key in left_out:
            if how == "absent":
                obj.pop(key, None)
            else:
                obj[key] = None
        obj.update(extras)
        fast = event_from_dict(json.loads(json.dumps(obj)))
        with generic_only():
            generic = event_from_dict(json.loads(json.dumps(obj)))
        assert fast.extra == generic.extra == extras, (left_out, how)
        assert repr(fast) == repr(generic)


_HEADER = """licence:
  id: TEST-1
  participant: p1
  title: test
  legal_basis: test
  valid_from: 2025-09-01T00:00:00+07:00
  valid_until: 2026-08-31T23:59:59+07:00
  reporting_currency: VND
  allowed_lateness: 30m
  reference_prices: {sources: [binance, okx], max_step: 2}
rules:
  - {id: cap, kind: max_transaction_value, severity: breach, clause: c, max: 2000000000, applies_to: [deposit]}
  - {id: lvtr, kind: large_value_report, severity: breach, clause: x, threshold: 1000000, deadline: 1h}
"""
_T0 = datetime(2025, 10, 1, 3, 0, tzinfo=timezone(timedelta(hours=7)))
_ZONES = (timezone(timedelta(hours=7)), UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=14)))


def _stream(seed: int) -> list[dict[str, Any]]:
    """Prices that walk in steps within the factor (so the 24 h band, not the step, refuses some), jumps, late
    prices (up to two hours, beyond the 30 min lateness), and deposits valued by them."""
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    now = 0
    level = {"USDT": 26000, "BTC": 2_000_000_000}
    for n in range(1, 160):
        late = rnd.random() < 0.15
        at = now - rnd.randint(0, 7200) if late else now + rnd.choice([0, 1, 60, 600, 1800, 3600])
        now = max(now, at)
        stamp = (_T0 + timedelta(seconds=at)).astimezone(rnd.choice(_ZONES)).isoformat()
        if rnd.random() < 0.6:
            base = rnd.choice(["USDT", "BTC"])
            if rnd.random() < 0.5:
                level[base] = max(1, int(level[base] * rnd.choice([1.4, 1.4, 0.7, 1, 1.9, 0.55])))
            value = level[base] if rnd.random() < 0.7 else int(level[base] * rnd.choice([2.5, 0.3, 1.2]))
            rows.append({"event_id": f"e{n}", "type": "price", "participant": rnd.choice(["p1", "p1", "p2"]),
                         "ts": stamp, "base": base, "quote": "VND",
                         "price": rnd.choice([str(value), f"{value}.0", f"{value}.00"]),
                         "source": rnd.choice(["binance", "okx", "okx", "evil"])})  # fmt: skip
        else:
            rows.append({"event_id": f"e{n}", "type": "deposit", "participant": "p1", "ts": stamp, "account": "c1",
                         "asset": rnd.choice(["USDT", "BTC", "VND"]), "amount": rnd.choice(["1", "10", "100000"]),
                         "rail": "bank"})  # fmt: skip
    return rows


def _findings(rows: list[dict[str, Any]], restore_at: int | None) -> list[tuple[Any, ...]]:
    licence = parse_licence(_HEADER)
    engine = Engine(licence)
    found: list[Finding] = []
    events: list[Event] = [event_from_dict(row) for row in rows]
    for index, event in enumerate(events):
        if index == restore_at:
            engine = zone_sharing_pickle.loads(pickle.dumps(engine))
        found.extend(engine.process(event))
    found.extend(engine.flush())
    return [(f.rule, f.evidence, f.message, f.observed, f.ts) for f in found]


@pytest.mark.parametrize("seed", [5, 6, 20, 22, 40])
def test_the_band_judges_prices_as_a_scan_of_every_window_across_late_prices_and_a_restore(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _stream(seed)
    cut = random.Random(seed).randint(1, len(rows) - 1)
    banded, restored = _findings(rows, None), _findings(rows, cut)
    with monkeypatch.context() as patch:
        patch.setattr(PriceBook, "range_from", PriceBook.scan_range)
        scanned = _findings(rows, None)
    assert banded == scanned
    assert restored == scanned
    # Not vacuous: the band refused some prices that each stepped within the factor.
    assert any("in the 24 hours before it" in message for rule, _, message, _, _ in scanned if rule == "price_refused")


_DAY = timedelta(hours=24)


@pytest.mark.parametrize(
    ("prices", "last", "refused"),
    [
        (("100", "140.0", "210"), _DAY, False),
        (("100", "140.0", "210"), _DAY - timedelta(seconds=1), True),
        (("210", "150.00", "100"), _DAY, False),
        (("210", "150.00", "100"), _DAY - timedelta(seconds=1), True),
    ],
)
def test_a_price_exactly_a_day_old_has_left_the_band(
    prices: tuple[str, str, str], last: timedelta, refused: bool
) -> None:
    """The band is (ts - 24 h, ts]: a price exactly 24 hours older no longer bounds the next one (its lowest or
    its highest), a second younger still does; the last price is within the factor 2 of the one before it."""
    start = datetime(2025, 10, 1, 3, 0, tzinfo=UTC)
    times = (start, start + timedelta(hours=12), start + last)
    events = [
        {"event_id": f"p{index}", "type": "price", "participant": "p1", "ts": when.isoformat(), "base": "USDT",
         "quote": "VND", "price": price, "source": "binance"}
        for index, (when, price) in enumerate(zip(times, prices, strict=True))
    ]  # fmt: skip
    found = _findings(events, None)
    assert [(rule, evidence) for rule, evidence, *_ in found] == ([("price_refused", ("p2",))] if refused else [])
    if refused:
        assert f"moved from {prices[0]} to {prices[2]}" in found[0][2]
