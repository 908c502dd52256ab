"""The parser's cost paths of issue 18, round 2, held to the paths they shortcut: the hour memo of
``canonical_timestamp`` to the parse itself, ``parse_json_line``'s own orjson attempt to the checks it skips
(``_FAST_JSON`` off: bracket counts, depth, ``_decode``, repeated keys), ``read_jsonl``'s one loop to
``jsonl_texts``, and a fast-built event (set slot by slot) to the one its class's ``__init__`` makes."""

from __future__ import annotations

import pickle
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandboxwatch.rules_engine import event_reader, timestamps
from sandboxwatch.rules_engine.event_reader import jsonl_texts, parse_json_line, read_jsonl
from sandboxwatch.rules_engine.events import FundsEvent, TradeEvent
from sandboxwatch.rules_engine.timestamps import _canonical_timestamp, canonical_timestamp, parse_timestamp

HOURS = ["2025-11-10T12:", "2025-02-28T23:", "2199-12-31T23:", "1970-01-01T00:"]
ZONES = ["Z", "+07:00", "-05:30", "+14:00", ".1234Z", "+14:01", "-00:00"]
# Minutes and seconds as written: valid ones, and what only looks like them.
MINUTES_SECONDS = ["00:00", "34:56", "59:59", "60:00", "00:60", "5 :00", "٣٤:56", "３４:56", "34-56", "3:456", "+1:00"]


def _parse(text: str) -> datetime | None:
    try:
        return parse_timestamp(text)
    except ValueError:
        return None


@pytest.mark.parametrize("hour", HOURS)
@pytest.mark.parametrize("zone", ZONES)
def test_a_remembered_hour_gives_the_parse_of_every_minute_and_second(hour: str, zone: str) -> None:
    timestamps._HOURS.clear()
    first = canonical_timestamp(f"{hour}00:00{zone}")
    assert first == _canonical_timestamp(f"{hour}00:00{zone}")
    for within in MINUTES_SECONDS:
        text = f"{hour}{within}{zone}"
        got = canonical_timestamp(text)
        want = _canonical_timestamp(text)
        assert got == want and (got is None or (got.tzinfo is want.tzinfo and got.fold == 0)), text  # type: ignore[union-attr]
        if got is not None:
            parsed = _parse(text)
            assert parsed == got and parsed.tzinfo is got.tzinfo and parsed.utcoffset() == got.utcoffset(), text


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(HOURS), st.text(max_size=6), st.sampled_from([*ZONES, "", "+07", "Zx"]))
def test_any_text_beside_a_remembered_hour_is_the_parse_or_left_to_it(hour: str, within: str, zone: str) -> None:
    canonical_timestamp(f"{hour}00:00{zone}")
    text = f"{hour}{within}{zone}"
    got = canonical_timestamp(text)
    assert got == _canonical_timestamp(text)
    if got is not None:
        assert _parse(text) == got


def test_the_hour_memo_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timestamps, "_MAX_HOURS", 8)
    timestamps._HOURS.clear()
    for day in range(1, 29):
        assert canonical_timestamp(f"2025-11-{day:02d}T12:00:00Z") == parse_timestamp(f"2025-11-{day:02d}T12:00:00Z")
    assert 0 < len(timestamps._HOURS) <= 8


DEPOSIT = (
    '{"event_id":"e1","type":"deposit","participant":"p","ts":"2025-11-10T12:00:00Z","account":"a","asset":"USDT",'
    '"amount":"5","rail":"onchain","chain":"eth","address":"0xab","tx_hash":"0x1","travel_rule":%s}'
)


def _nested(depth: int, leaf: str) -> str:
    for _ in range(depth):
        leaf = '{"k":' + leaf + "}"
    return leaf


HOSTILE_JSON = [
    *(DEPOSIT % _nested(depth, '"x"') for depth in range(5, 10)),
    *(DEPOSIT % ("[" * depth + "1" + "]" * depth) for depth in range(5, 10)),
    DEPOSIT % '{"originator":{"name":"A","account":"b","name":"C"},"beneficiary":null}',
    DEPOSIT % '{"originator":{"name":"A","x":1.5},"beneficiary":null}',
    DEPOSIT % '{"originator":{"name":"A","x":123456789012345678901},"beneficiary":null}',
    DEPOSIT % '{"originator":{"name":"A","x":9999999999999999999},"beneficiary":null}',
    DEPOSIT % '{"originator":{"name":"A","x":-1000000000000000000},"beneficiary":null}',
    DEPOSIT % '{"originator":{"name":"A\\"","account":"b"},"beneficiary":null}',
    DEPOSIT % '{"originator":{"name":"A\\\\","account":"b","account":"c"},"beneficiary":null}',
    DEPOSIT % '{"originator":{"name":"\\u0041","account":"b"},"beneficiary":null}',
    DEPOSIT % '{"originator":null,"beneficiary":null,"originator":null}',
    DEPOSIT.replace('"amount":"5"', '"amount":"5","amount":"6"') % "null",
    DEPOSIT.replace('"amount":"5"', '"amount":5.0') % "null",
    DEPOSIT.replace('"amount":"5"', '"amount":50000000000000000000') % "null",
    '[{"a":1}]', '"x"', "1", "null", "{", '{"a":NaN}', '{"a":1e999}', '{"a" : 1 , "a":2}', '{"a":"\\ud800"}',
    '{"a":"\\\\\\"","a":"x"}', "[" * 9 + "]" * 9, "{" * 9, '{"a":' * 9 + "1" + "}" * 9,
]  # fmt: skip


def _outcome(text: str) -> tuple[Any, ...]:
    result = parse_json_line(text, "t", 7)
    return repr(result), getattr(result, "digest", None)


@pytest.mark.parametrize("text", HOSTILE_JSON)
def test_the_orjson_attempt_gives_what_the_checks_it_skips_give(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _outcome(text)
    monkeypatch.setattr(event_reader, "_FAST_JSON", False)
    assert _outcome(text) == fast


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", '"', "\\"]), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from(["", " ", "dup"]))
def test_any_json_parses_alike_with_and_without_the_orjson_attempt(value: Any, form: str) -> None:
    import json

    text = json.dumps(value, separators=(", ", ": ") if form == " " else (",", ":"), ensure_ascii=False)
    if form == "dup" and text.startswith("{") and len(text) > 2:
        text = '{"a":0,' + text[1:]
    fast = _outcome(text)
    event_reader._FAST_JSON = False
    try:
        assert _outcome(text) == fast, text
    finally:
        event_reader._FAST_JSON = True


LINES = ["", "  \n", "\ufeff\n", '{"a":1}\r', "\n", '{"a":2}\r\n', " \ufeff{}\n", '{"a":3}\n', "\r", "x\n"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(LINES), max_size=12))
def test_read_jsonl_numbers_and_joins_lines_as_jsonl_texts_does(lines: list[str]) -> None:
    want = [(number, repr(parse_json_line(text, "s", number))) for number, text in jsonl_texts(lines)]
    assert [(number, repr(item)) for number, item in read_jsonl(lines, "s")] == want


def test_a_fast_built_event_is_the_one_its_init_makes() -> None:
    trade = parse_json_line(
        '{"event_id":"t1","type":"trade","participant":"p","ts":"2025-11-10T12:00:00+07:00","account":"a","side":"buy","base":"BTC",'
        '"quote":"VND","quantity":"1.5","price":"100"}',
        "s",
        1,
    )
    funds = parse_json_line(
        '{"event_id":"d1","type":"withdrawal","participant":"p","ts":"2025-11-10T12:00:00+07:00","account":"a","asset":"VND",'
        '"amount":"5","rail":"bank"}',
        "s",
        2,
    )
    assert type(trade) is TradeEvent and type(funds) is FundsEvent
    assert trade == TradeEvent(*(getattr(trade, f) for f in TradeEvent.__match_args__))
    assert funds == FundsEvent(*(getattr(funds, f) for f in FundsEvent.__match_args__))
    for event in (trade, funds):
        copy = pickle.loads(pickle.dumps(event))
        assert copy == event and copy.digest == event.digest != 0 and type(copy) is type(event)
    assert TradeEvent(*(getattr(trade, f) for f in TradeEvent.__match_args__)).digest == 0
