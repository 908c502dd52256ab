"""A key repeated in one JSON object, or a column repeated in a CSV header, makes the line invalid with the key
named (line, field, reason), on every decoder path (orjson's fast one, the stdlib one) and every reader:
``check``'s file reader, a stream message (one event or a batch line), an ingest_error message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandboxwatch.rules_engine.event_reader import _DECODER, decode_json, parse_json_line, read_csv
from sandboxwatch.rules_engine.events import Event, EventError
from sandboxwatch.rules_engine.json_bounds import RepeatedKeys, loads_bounded
from sandboxwatch.streams.inbound import InboundMessage, LineError, decode_all
from tests.helpers import onchain, trade, ts

REASON = "appears more than once in one object: which of its values is meant is ambiguous"


def _line(**changes: Any) -> str:
    return json.dumps(trade("c1", ts(hour=3), event_id="k1") | changes)


def _error(text: str) -> EventError:
    result = parse_json_line(text, "f.jsonl", 7)
    assert isinstance(result, EventError), text
    assert (result.source, result.line) == ("f.jsonl", 7)
    return result


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('"quantity": "1"', "quantity"),  # orjson would keep this, the last value
        ('"quantity" : "1"', "quantity"),  # whitespace before the colon
        ('"quantity"\n:\t"100"', "quantity"),  # the same value, written again
        ('"note": "a\\":b", "quantity": "1"', "quantity"),  # an escaped quote and colon in a string
        ('"note": "\\\\", "price": 1', "price"),  # an escaped backslash
        ('"note": "\\u00e9", "event_id": "k2"', "event_id"),
        ('"price": 1.5', "price"),  # a float: the stdlib decoder's path
        ('"price": ' + "9" * 30, "price"),  # an oversize integer: the stdlib decoder's path too
    ],
)
def test_a_repeated_top_level_key_is_an_invalid_line_naming_it(text: str, field: str) -> None:
    line = _line()[:-1] + ", " + text + "}"
    error = _error(line)
    assert error.field == field and error.reason == f"the key {field!r} {REASON}"
    # The envelope stays readable for the finding (the first value of each key).
    assert (error.event_id, error.participant) == ("k1", "p1")


def test_a_repeated_nested_key_is_named_by_its_path() -> None:
    row = onchain("deposit", travel_rule={"originator": {"name": "A", "account": "x"}, "beneficiary": None})
    line = json.dumps(row).replace('"name": "A"', '"name": "A", "name": "B"')
    error = _error(line)
    assert error.field == "travel_rule.originator.name" and error.reason == f"the key 'name' {REASON}"
    listed = json.dumps(row | {"x": [1, {"a": 1}]}).replace('{"a": 1}', '{"a": 1, "a": 1}')
    assert _error(listed).field == "x[1].a"
    assert isinstance(parse_json_line(json.dumps(row), "f", 1), Event)


def test_lines_without_a_repeated_key_still_parse_on_either_path() -> None:
    for line in (_line(), _line(note='a":b'), _line(note="\\"), _line(note="é"), _line(note='x" :y')):
        assert isinstance(parse_json_line(line, "f", 1), Event), line
        assert isinstance(parse_json_line(json.dumps(json.loads(line), ensure_ascii=False), "f", 1), Event), line


def test_the_stdlib_decoder_keeps_the_first_value_and_marks_the_object() -> None:
    value = _DECODER.decode('{"a": 1, "b": 2, "a": 3, "b": 4}')
    assert type(value) is RepeatedKeys and value == {"a": 1, "b": 2} and value.repeated == "a"
    assert decode_json('{"a": 1, "a": 3}') == {"a": 1}
    with pytest.raises(ValueError, match="the key 'a' appears more than once"):
        loads_bounded('{"b": {"a": 1, "a": 3}}', 8)


def test_a_csv_header_naming_a_column_twice_makes_every_row_invalid() -> None:
    rows = [
        "event_id,type,participant,ts,base,quote,price,source,price",
        "e1,price,p1,2025-10-01T10:00:00+07:00,USDT,VND,1,x,26000",
        "e2,price,p1,2025-10-01T10:00:00+07:00,USDT,VND,26000,x,26000",
    ]
    errors = [item for _, item in read_csv(rows, "c.csv")]
    assert [(e.line, e.field, e.event_id) for e in errors if isinstance(e, EventError)] == [
        (2, "price", "e1"),
        (3, "price", "e2"),
    ]
    assert isinstance(errors[0], EventError)
    assert errors[0].reason == (
        "the column 'price' appears more than once in the header (columns 7 and 9): "
        "which of its cells is meant is ambiguous"
    )


def test_a_csv_json_cell_with_a_repeated_key_is_refused() -> None:
    rows = [
        "event_id,type,participant,ts,account,asset,amount,rail,chain,address,tx_hash,travel_rule",
        'd1,deposit,p1,2025-10-01T10:00:00+07:00,c1,USDT,5,onchain,eth,0xa,0x1,"{""originator"":1,""originator"":2}"',
    ]
    [(_, error)] = list(read_csv(rows, "c.csv"))
    assert isinstance(error, EventError) and error.field == "travel_rule.originator"


def test_the_stream_worker_refuses_the_line_as_check_does() -> None:
    bad = _line()[:-1] + ', "quantity": "1"}'
    single = decode_all(InboundMessage("events", 0, 5, b"p1", bad.encode()))
    batch = decode_all(InboundMessage("events", 0, 6, b"p1", (_line() + "\n" + bad).encode()))
    for item in (single[0], batch[1]):
        assert isinstance(item, LineError) and item.error.field == "quantity"
        assert item.error.reason == f"the key 'quantity' {REASON}"
    assert not isinstance(batch[0], LineError)
    # An ingest_error with a repeated key is refused for it too, as check's reader refuses that line.
    report = '{"type": "ingest_error", "participant": "p1", "reason": "x", "reason": "y", "origin": "o"}'
    [item] = decode_all(InboundMessage("events", 0, 7, b"p1", report.encode()))
    assert isinstance(item, LineError) and item.error.field == "reason"
    assert _error(report).field == "reason"


keys = st.text(st.characters(codec="utf-8", exclude_characters='"\\'), min_size=1, max_size=6)
values = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=8)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(keys, values, min_size=1, max_size=6),
    st.data(),
    st.sampled_from([", ", ",", " ,\n "]),
    st.sampled_from([": ", ":", " : ", "\t:"]),
    st.booleans(),
)
def test_any_repeated_key_in_any_spelling_is_found(
    obj: dict[str, Any], data: st.DataObject, comma: str, colon: str, ascii_only: bool
) -> None:
    key = data.draw(st.sampled_from(sorted(obj)))
    again = data.draw(values)
    pairs = [*obj.items(), (key, again)]
    order = data.draw(st.permutations(range(len(pairs))))
    again_first = order.index(len(pairs) - 1) < order.index(list(obj).index(key))
    first = again if again_first else obj[key]
    text = (
        "{"
        + comma.join(
            json.dumps(pairs[i][0], ensure_ascii=ascii_only) + colon + json.dumps(pairs[i][1], ensure_ascii=ascii_only)
            for i in order
        )
        + "}"
    )
    decoded = decode_json(text)
    assert type(decoded) is RepeatedKeys and decoded.repeated == key and decoded[key] == first
    error = parse_json_line(text, "f", 1)
    assert isinstance(error, EventError) and error.field == key and REASON in error.reason
    unique = "{" + comma.join(json.dumps(k) + colon + json.dumps(v) for k, v in obj.items()) + "}"
    assert decode_json(unique) == obj and type(decode_json(unique)) is dict
