"""The parser's cost paths of issue 18, round 2, held to the paths they shortcut: ``parse_json_line``'s own
orjson attempt to the checks it skips (``_FAST_JSON`` off: bracket counts, depth, ``_decode``, repeated
keys), ``read_jsonl``'s one loop to ``jsonl_texts``, and a fast-built event to the one its class's
``__init__`` makes. Measured and dropped: setting a fast-built event's slots one by one (no difference
inside a builder) and a memo of timestamps by hour (the simulated day's texts carry six fractional digits,
and adding them back cost as much as the parse)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandboxwatch.rules_engine import event_reader
from sandboxwatch.rules_engine.event_reader import jsonl_texts, parse_json_line, read_jsonl
from sandboxwatch.rules_engine.events import FundsEvent, TradeEvent

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
