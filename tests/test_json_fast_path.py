"""The event reader's fast JSON path (orjson) must give exactly what the bounded stdlib decoder gives: the
same value for every line, the same refusal (and reason) for every bad one, so every bound of
docs/events.md holds whichever decoder read the line."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sandboxwatch.rules_engine.event_reader import _DECODER, decode_json, parse_json_line
from sandboxwatch.rules_engine.events import Event, EventError
from sandboxwatch.rules_engine.money import OversizeNumber

NUMBER_LITERALS = [
    "0", "-0", "1", "-1", "9999999999999999999", "-999999999999999999", "-1000000000000000000",
    "10000000000000000000", "18446744073709551615", "18446744073709551616", "1" + "0" * 40,
    "1.5", "-0.0", "1e5", "1E400", "-1e-400", "NaN", "Infinity", "-Infinity", "01", "1.", "2e",
]  # fmt: skip
TEXTS = ["x", "", "\\ud800", "\\udc00\\ud800", "\\u0000", "\\/", "\u2028", "é", "\\n", "\t", "\\"]


def outcome(decode: Any, text: str) -> tuple[str, Any]:
    try:
        value = decode(text)
    except (ValueError, RecursionError) as exc:
        return "error", str(exc)
    return "value", _comparable(value)


def _comparable(value: Any) -> Any:
    """Values as comparable data: OversizeNumber by its digits, floats by repr (NaN != NaN)."""
    if isinstance(value, OversizeNumber):
        return ("oversize", value.digits)
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return (type(value).__name__, value)


def test_every_number_and_string_form_decodes_as_the_stdlib_decoder_does() -> None:
    for number in NUMBER_LITERALS:
        for text in (f'{{"block": {number}}}', f'{{"a": [1, {{"b": {number}}}]}}', f"[{number}]", number):
            assert outcome(decode_json, text) == outcome(_DECODER.decode, text), text
    for string in TEXTS:
        text = f'{{"event_id": "{string}"}}'
        assert outcome(decode_json, text) == outcome(_DECODER.decode, text), text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.sampled_from(NUMBER_LITERALS),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(json_values, st.integers(min_value=0, max_value=200), st.sampled_from(["", "x", "}", ",", "\\", '"', "-"]))
def test_any_value_or_mutation_of_it_decodes_the_same(value: Any, cut: int, insert: str) -> None:
    text = json.dumps(value)
    assert outcome(decode_json, text) == outcome(_DECODER.decode, text)
    mutated = text[:cut] + insert + text[cut:]
    assert outcome(decode_json, mutated) == outcome(_DECODER.decode, mutated)


def test_the_bounds_keep_their_reasons_on_the_fast_path() -> None:
    base = {"event_id": "e1", "type": "transfer", "participant": "p", "ts": "2025-10-01T10:00:00+07:00",
            "chain": "eth", "tx_hash": "0x1", "log_index": 0, "block": 7, "from": "a", "to": "b", "asset": "USDT",
            "amount": "1"}  # fmt: skip
    line = json.dumps(base)
    assert isinstance(parse_json_line(line, "s", 1), Event)
    for field, literal, reason in (
        ("block", "12345678901234567890", "a 20-digit integer is larger than"),
        ("block", "-1000000000000000000", "a 19-digit integer is larger than"),
        ("block", "1.5", "must be an integer, not float"),
        ("amount", "1" + "0" * 30, "a 31-digit number is outside the bounds"),
        ("amount", "0.1", "must be a decimal string, not a float"),
    ):
        text = line.replace(f'"{field}": {json.dumps(base[field])}', f'"{field}": {literal}')
        assert text != line
        error = parse_json_line(text, "s", 1)
        assert isinstance(error, EventError) and error.field == field, text
        assert reason in error.reason, (text, error.reason)
