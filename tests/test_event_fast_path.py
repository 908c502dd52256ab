"""The parser's fast path (rules_engine/event_fast_path.py) must be invisible: for every object, the event
it builds is the generic path's event, field for field, and what it refuses the generic path refuses with
the same field and reason. Checked over a simulated day of every type, every field of the fast types set
to hostile values, and the fuzz mutants of tests/test_fuzz_events.py."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sandboxwatch.rules_engine import event_parser
from sandboxwatch.rules_engine.event_fast_path import FIELDS
from sandboxwatch.rules_engine.event_parser import FieldError, event_from_dict
from sandboxwatch.rules_engine.event_reader import decode_json
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
from tests.test_fuzz_events import LICENCE, MUTATIONS, ROWS

HOSTILE: list[Any] = [
    None, "", "x", "é", "\ud800", "a" * 256, "a" * 257, 0, 1, -1, 2**70, 1.5, True, False, [], ["a"], {}, {"a": 1},
    "0", "-1", "1.5", "1e5", "NaN", " 1", "0x10", "onchain", "bank", "buy", "sell", "verified", "foreign",
    "2025-10-01T10:00:00+07:00", "2025-10-01T10:00:00", "1969-12-31T23:59:59Z",
    " 0xab", "0xab ", "0xab\u200b", "\u3000", "\u2800", "-",
    "c 1", "USDT\u00a0", "p1\u2060", "0x\u0430b", "\u0391BC", "Nguyễn-Văn-A",
]  # fmt: skip


@contextmanager
def generic_only() -> Iterator[None]:
    fast, event_parser._FAST = event_parser._FAST, {}
    try:
        yield
    finally:
        event_parser._FAST = fast


def outcome(obj: Any) -> tuple[str, ...]:
    """The event as its type and repr (every field, Decimals and datetimes exactly as built), or the error."""
    try:
        event = event_from_dict(obj)
    except FieldError as exc:
        return "error", exc.field, exc.reason
    return "event", type(event).__name__, repr(event)


def assert_same(obj: Any) -> tuple[str, ...]:
    fast = outcome(obj)
    with generic_only():
        generic = outcome(obj)
    assert fast == generic, obj
    return fast


def test_a_simulated_day_parses_the_same_and_the_common_types_take_the_fast_path() -> None:
    lines = scenario_lines(build_scenario(LICENCE, SimulationConfig(accounts=60, seed=11, target_events=2000)))
    taken = 0
    for line in lines:
        obj = json.loads(line)
        assert assert_same(obj)[0] == "event"
        if obj["type"] in FIELDS:
            assert event_parser._FAST[obj["type"]](obj) is not None, line
            taken += 1
    assert taken > 1500


def _with_optional_fields(row: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The row as it is, and with the optional fields the simulator rarely writes."""
    yield row
    kind = row["type"]
    if kind in ("trade", "deposit", "withdrawal"):
        yield {**row, "fee": "1.5", "fee_asset": "USDT"}
    if kind in ("deposit", "withdrawal"):
        yield {**row, "completed_ts": "2099-01-01T00:00:00+07:00"}
        yield {**row, "travel_rule": {"originator": {"name": "A", "account": "1"}, "beneficiary": None}}
    if kind == "account":
        yield {**row, "bank_account_verified": True, "wallets": ["0xabc"]}


def test_every_field_of_the_fast_types_refused_or_accepted_as_the_generic_path_does() -> None:
    seen_types: set[str] = set()
    compared = 0
    for row in ROWS:
        if row["type"] not in FIELDS or row["type"] in seen_types:
            continue
        seen_types.add(row["type"])
        for variant in _with_optional_fields(row):
            keys = [*variant, "fee", "fee_asset", "completed_ts", "counterparty_account", "token", "extra_field"]
            for key in keys:
                for value in HOSTILE:
                    assert_same({**variant, key: value})
                    compared += 1
                assert_same({k: v for k, v in variant.items() if k != key})
    assert seen_types == set(FIELDS)
    assert compared > 5000


def test_fuzz_mutants_parse_the_same_on_both_paths() -> None:
    rng = random.Random(18)
    names = sorted(MUTATIONS)
    kinds: set[str] = set()
    for _ in range(20_000):
        row = json.loads(json.dumps(rng.choice(ROWS)))
        line = MUTATIONS[rng.choice(names)](rng, row)
        try:
            obj = decode_json(line.lstrip("\ufeff"))
        except (ValueError, RecursionError):
            continue
        kinds.add(assert_same(obj)[0])
    assert kinds == {"event", "error"}


def test_the_fast_path_is_used_by_the_line_parser() -> None:
    """Not a timing: the generic path's field helpers are not called for a valid trade."""
    row = next(r for r in ROWS if r["type"] == "trade")
    calls: list[str] = []
    original = event_parser._str

    def counting(obj: Any, name: str) -> str:
        calls.append(name)
        return original(obj, name)

    event_parser._str = counting
    try:
        event = event_from_dict(dict(row))
        with generic_only():
            event_from_dict(dict(row))
    finally:
        event_parser._str = original
    assert event.event_id == row["event_id"]
    assert "account" in calls and calls.count("account") == 1  # once, by the generic path only
