"""The bounded parser: each hostile value is refused with its line, field and reason; bounds are exact."""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sandboxwatch.cli import main
from sandboxwatch.rules_engine.event_reader import MAX_LINE_CHARS, detect_format, parse_json_line, read_csv, read_jsonl
from sandboxwatch.rules_engine.events import EventError, TradeEvent
from sandboxwatch.rules_engine.money import parse_decimal
from tests.helpers import DA_NANG, account, funds, onchain, price, trade, ts
from tests.test_event_fast_path import assert_same

P = "alphatrue-basal-pay"


def _line(**changes: Any) -> str:
    return json.dumps(trade("c1", ts(hour=3), participant=P, event_id="x1") | changes)


def _error(text: str) -> EventError:
    result = parse_json_line(text, "f.jsonl", 7)
    assert isinstance(result, EventError), result
    assert result.line == 7 and result.source == "f.jsonl"
    return result


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"price": "1e27"}, "price", "magnitude must be below 1e24"),
        ({"price": "1e-27"}, "price", "more than 18 digits after the decimal point"),
        ({"quantity": "1e999999"}, "quantity", "magnitude must be below 1e24"),
        ({"quantity": "1" * 29}, "quantity", "magnitude must be below 1e24"),
        ({"quantity": "1." + "1" * 28}, "quantity", "more than 18 digits after the decimal point"),
        ({"quantity": "123456789012345678901.23456789"}, "quantity", "more than 28 significant digits"),
        ({"quantity": "9" * 65}, "quantity", "longer than 64"),
        ({"quantity": "NaN"}, "quantity", "must be a finite number"),
        ({"quantity": "-Infinity"}, "quantity", "must be a finite number"),
        ({"quantity": 10**25}, "quantity", "outside the bounds"),
        ({"ts": "0001-01-01T00:00:00+14:00"}, "ts", "year 1 is outside 1970..2199"),
        ({"ts": "9999-12-31T23:59:59-14:00"}, "ts", "year 9999 is outside 1970..2199"),
        ({"ts": "2025-10-01T00:00:00+15:00"}, "ts", "within -14:00..+14:00"),
        ({"ts": "2025-10-01T00:00:00+05:00:30"}, "ts", "whole minutes"),
        ({"ts": "2025-02-30T00:00:00Z"}, "ts", "day is out of range for month"),
        ({"ts": "2025-10-01T00:00:00Z\x00garbage"}, "ts", "it holds a NUL character"),
        ({"account": "\ud800"}, "account", "lone surrogate U+D800 at character 1"),
        ({"account": "a" * 257}, "account", "longer than 256"),
        ({"site": ["DN-SP2"]}, "site", "must be a string, not list"),
        ({"event_id": ""}, "event_id", "must not be empty"),
        # Decimal() reads all of these; the events' grammar does not (docs/events.md, Bounds).
        ({"quantity": "400_000_000"}, "quantity", "not a decimal number in the events' form: '400_000_000'"),
        ({"quantity": "\u0664\u0660\u0660"}, "quantity", "not a decimal number in the events' form"),  # Arabic-Indic
        ({"quantity": "\uff11\uff10"}, "quantity", "not a decimal number in the events' form"),  # fullwidth
        ({"quantity": " 100"}, "quantity", "not a decimal number in the events' form"),
        ({"quantity": "100 "}, "quantity", "not a decimal number in the events' form"),
        ({"quantity": "+100"}, "quantity", "not a decimal number in the events' form"),
        ({"quantity": "100."}, "quantity", "not a decimal number in the events' form"),
        ({"quantity": ".5"}, "quantity", "not a decimal number in the events' form"),
        ({"quantity": "1e5\n"}, "quantity", "not a decimal number in the events' form"),
        ({"quantity": "Infinity"}, "quantity", "must be a finite number"),
        ({"quantity": "sNaN"}, "quantity", "must be a finite number"),
        # Nanoseconds: datetime keeps microseconds, fromisoformat drops the rest without a word.
        ({"ts": "2025-10-01T10:00:00.123456789+07:00"}, "ts", "more precise than a microsecond"),
        ({"ts": "2025-10-01T10:00:00,0000001Z"}, "ts", "more precise than a microsecond"),
        # ISO 8601 forms fromisoformat reads but RFC 3339 does not have: refused, not read as some instant.
        ({"ts": "2025-W40-3T10:00:00+07:00"}, "ts", "not an RFC 3339 timestamp: '2025-W40-3T10:00:00+07:00' (the form"),
        ({"ts": "20251001T100000+0700"}, "ts", "(the form is YYYY-MM-DDTHH:MM:SS, optionally .ffffff, then Z or"),
        ({"ts": "2025-10-01T10+07:00"}, "ts", "(the form is YYYY-MM-DDTHH:MM:SS"),
        ({"ts": "2025-10-01T10:00:00+07"}, "ts", "(the form is YYYY-MM-DDTHH:MM:SS"),
        ({"ts": "2025-10-01T10:00:00+0700"}, "ts", "(the form is YYYY-MM-DDTHH:MM:SS"),
        ({"ts": "2025-10-01T10:00:00,5+07:00"}, "ts", "(the form is YYYY-MM-DDTHH:MM:SS"),
        ({"ts": "2025-10-01T10:00:00+24:00"}, "ts", "'2025-10-01T10:00:00+24:00' (UTC offset out of range)"),
        # Control characters and bidirectional formatting in ids, names and codes.
        ({"event_id": "t\x001"}, "event_id", "holds a control character U+0000 at character 2"),
        ({"participant": "p1\x1b[2J"}, "participant", "holds a control character U+001B at character 3"),
        ({"account": "c\x7f1"}, "account", "holds a control character U+007F at character 2"),
        ({"account": "c\x851"}, "account", "holds a control character U+0085 at character 2"),
        ({"account": "acc-1\u202e9-cca"}, "account", "bidirectional formatting character U+202E at character 6"),
        ({"site": "\u2066DN-SP2\u2069"}, "site", "bidirectional formatting character U+2066 at character 1"),
        ({"counterparty_account": "c2\n"}, "counterparty_account", "holds a control character U+000A"),
    ],
)
def test_each_bound_names_field_and_reason(changes: dict[str, Any], field: str, reason: str) -> None:
    error = _error(_line(**changes))
    assert error.field == field and reason in error.reason, error


def test_the_exact_forms_are_still_accepted() -> None:
    for quantity in ("100", "0.5", "100.000", "1e2", "1E+2", "15e-1", "007"):
        assert isinstance(parse_json_line(_line(quantity=quantity), "f", 1), TradeEvent), quantity
    for stamp in ("2025-10-01T10:00:00Z", "2025-10-01 10:00:00+07:00", "2025-10-01T10:00:00.5-03:30",
                  "2025-10-01T10:00:00.123456000+00:00"):  # fmt: skip
        assert isinstance(parse_json_line(_line(ts=stamp), "f", 1), TradeEvent), stamp
    negative = _error(_line(quantity="-0.5"))  # the grammar takes a sign; the field's own rule refuses it
    assert negative.field == "quantity" and negative.reason == "must be greater than zero, not -0.5"
    for stamp in ("2025-10-01T10:00:00.123456789+07:00".replace("789", "000"), "2025-10-01T10:00:00.1234560Z"):
        event = parse_json_line(_line(ts=stamp), "f", 1)
        assert isinstance(event, TradeEvent) and event.ts.microsecond == 123456, stamp
    named = _line(account="Nguyễn-Văn-A", travel_rule={"originator": {"name": "שלום עליכם"}})
    assert isinstance(parse_json_line(named, "f", 1), TradeEvent)  # right-to-left text itself is fine


def test_an_error_never_carries_a_hidden_character_into_its_report() -> None:
    error = _error(_line(event_id="x\u202e1", quantity="+1"))
    assert error.field == "event_id" and error.event_id is None


def test_bounds_that_are_not_about_one_field() -> None:
    huge_int = _line(quantity="N").replace('"quantity": "N"', '"quantity": ' + "9" * 5000)
    error = _error(huge_int)
    assert error.field == "quantity" and "5000-digit number" in error.reason
    assert "4300" not in error.reason  # Python's own int() limit never surfaces
    assert "not valid JSON" in _error('{"a": 1e999999}').reason or _error('{"a": 1e999999}').field is not None
    assert _error(_line(quantity="N").replace('"N"', "1e999999")).reason.startswith("must be a decimal")
    deep = _line()[:-1] + ', "x": ' + "[" * 20000 + "]" * 20000 + "}"
    assert _error(deep).reason == "nested deeper than 8 levels"  # judged before the decoder recurses
    in_text = _line(account="[" * 30 + "{" * 30)
    assert isinstance(parse_json_line(in_text, "f", 1), TradeEvent)  # brackets inside strings are not nesting
    escaped = _line(account='\\"' + "[" * 30)
    assert isinstance(parse_json_line(escaped, "f", 1), TradeEvent)
    nested = _line()[:-1] + ', "x": ' + "[" * 9 + "]" * 9 + "}"
    assert _error(nested).reason == "nested deeper than 8 levels"
    assert isinstance(parse_json_line(_line()[:-1] + ', "x": ' + "[" * 7 + "]" * 7 + "}", "f", 1), TradeEvent)
    long = _line()[:-1] + ', "pad": "' + "x" * MAX_LINE_CHARS + '"}'
    assert "longer than 1048576" in _error(long).reason and len(_error(long).raw) == 500
    assert "lone surrogate" in _error(_line(event_id="\udcff")).reason
    assert _error(_line(event_id="\udcff")).event_id is None  # not carried into a finding that must be written


def test_exact_edges_are_accepted() -> None:
    assert parse_decimal("9" * 24) == 10**24 - 1
    assert parse_decimal("0." + "0" * 17 + "1").as_tuple().exponent == -18
    assert parse_decimal("1.500000000000000000000000000000000") == parse_decimal("1.5")  # zeros are not precision
    assert parse_decimal("1234567890.123456789012345678") == parse_decimal("1234567890.123456789012345678")
    for stamp in ("1970-01-01T00:00:00+14:00", "2199-12-31T23:59:59-14:00"):
        assert isinstance(parse_json_line(_line(ts=stamp), "f", 1), TradeEvent)
    assert isinstance(parse_json_line(_line(account="Nguyễn-Văn-A"), "f", 1), TradeEvent)
    native = json.dumps(
        {"event_id": "n", "type": "transfer", "participant": P, "ts": ts(), "chain": "ethereum", "tx_hash": "0x1",
         "log_index": -1, "block": 5, "from": "0xa", "to": "0xb", "asset": "ETH", "amount": "1"}
    )  # fmt: skip
    assert not isinstance(parse_json_line(native, "f", 1), EventError)  # the connector's native transfers


def test_bom_and_format_from_content() -> None:
    lines = ["\ufeff" + _line() + "\n", _line(event_id="x2") + "\n"]
    assert [type(r).__name__ for _, r in read_jsonl(lines, "f")] == ["TradeEvent", "TradeEvent"]
    header = "\ufeffevent_id,type,participant,ts,account,side,base,quote,quantity,price,site\n"
    assert detect_format("events.jsonl", header) == "csv"  # content over name
    assert detect_format("-", "\ufeff" + _line()) == "jsonl"
    assert detect_format("events.csv", "garbage") == "jsonl"  # neither form: every line gets reported
    assert detect_format("", "hello,world") == "jsonl"
    row = f"x1,trade,{P},{ts(hour=3)},c1,buy,USDT,VND,1,26000,DN-SP2\n"
    assert [type(r).__name__ for _, r in read_csv([header, row], "f")] == ["TradeEvent"]
    big = f'x2,trade,{P},{ts(hour=3)},c1,buy,USDT,VND,1,26000,"{"x" * 200_000}"\n'
    results = [r for _, r in read_csv([header, big, row], "f")]
    assert isinstance(results[0], EventError) and "not valid CSV" in results[0].reason
    assert isinstance(results[1], TradeEvent)  # the row after the bad one is still read


def _rows() -> list[dict[str, Any]]:
    return [price(ts(hour=0), participant=P), account("c1", participant=P), trade("c1", ts(hour=3), participant=P)]


def _check(path: Path, *extra: str) -> int:
    return main(["check", "--licence", str(DA_NANG), "--events", str(path), *extra])


def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = "".join(json.dumps(r) + "\n" for r in _rows())
    cases = {
        "only-invalid.jsonl": ("{broken\nnot json\n", 2),
        "empty.jsonl": ("", 2),
        "blank.jsonl": ("\n\n   \n", 2),
        "other-participant.jsonl": (json.dumps(trade("c1", ts(), participant="someone")) + "\n", 2),
        "good.txt": (good, 0),
        "good-with-bad.jsonl": (good + "{broken\n" + _line(price="1e27") + "\n", 0),
        "breach.jsonl": (good + _line(quantity="100000") + "\n", 1),
    }
    for name, (text, code) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        assert _check(path) == code, name
    err = capsys.readouterr().err
    assert "no valid event of participant alphatrue-basal-pay was read (2 invalid lines, read as jsonl" in err
    bom = tmp_path / "bom.data"
    bom.write_bytes(codecs.BOM_UTF8 + good.encode())
    assert _check(bom) == 0 and "3 events checked" in capsys.readouterr().err
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes(codecs.BOM_UTF16_LE + good.encode("utf-16-le"))
    assert _check(utf16) == 0
    latin = tmp_path / "latin.jsonl"
    cafe = json.dumps(trade("café", ts(hour=3), participant=P, event_id="x9"), ensure_ascii=False)
    latin.write_bytes(good.encode() + cafe.encode("latin-1") + b"\n")
    assert _check(latin) == 0
    assert "latin.jsonl:4: not valid UTF-8: byte 0xE9" in capsys.readouterr().err
    as_csv = tmp_path / "good.jsonl"
    as_csv.write_text(good)
    assert _check(as_csv, "--input-format", "csv") == 2  # the operator's choice is obeyed, and it is wrong


def test_internal_error_has_its_own_code(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sandboxwatch.cli as cli

    def broken(*args: object, **kwargs: object) -> object:
        raise KeyError("boom")

    monkeypatch.setattr(cli, "run_check", broken)
    path = tmp_path / "e.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    assert _check(path) == 3


def test_stdin_with_a_bom_through_the_console_script() -> None:
    good = "".join(json.dumps(r) + "\n" for r in _rows()).encode()
    command = [sys.executable, "-m", "sandboxwatch.cli", "check", "--licence", str(DA_NANG), "--events", "-"]
    result = subprocess.run(command, input=codecs.BOM_UTF8 + good, capture_output=True, check=False)
    assert result.returncode == 0 and b"3 events checked" in result.stderr and b"invalid" in result.stderr
    assert b"(0 invalid" in result.stderr
    junk = subprocess.run(command, input=b"\xef\xbb\xbfa,b\n1,2\n", capture_output=True, check=False)
    assert junk.returncode == 2 and b"Traceback" not in junk.stderr


def test_an_endless_line_is_cut_not_held(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from sandboxwatch.rules_engine.event_reader import bounded_lines

    text = "a\n" + "x" * (3 * MAX_LINE_CHARS) + "\nb\r\nc"
    lines = list(bounded_lines(io.StringIO(text, newline="")))
    assert [len(line) for line in lines] == [2, MAX_LINE_CHARS + 1, 3, 1]
    path = tmp_path / "long.jsonl"
    good = "".join(json.dumps(r) + "\n" for r in _rows())
    path.write_text(good + '{"pad": "' + "x" * (2 * MAX_LINE_CHARS) + '"}\n' + _line(event_id="after") + "\n")
    assert _check(path) == 0
    err = capsys.readouterr().err
    assert "long.jsonl:4: a line longer than 1048576 characters" in err
    assert (
        "4 events checked against DN-136-PILOT-01 (1 invalid" in err
    )  # the line after the long one is read, with its own number


def test_an_event_a_rule_cannot_compute_is_contained_with_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the parser's bounds (a rule's own bug, say): the self-check names the line and judges the rest."""
    from sandboxwatch.rules_engine.engine import Engine
    from sandboxwatch.rules_engine.self_check import run_check

    real = Engine._judge

    def fragile(self: Engine, event: Any) -> Any:
        if event.event_id == "poison":
            raise ArithmeticError("rule could not compute")
        return real(self, event)

    monkeypatch.setattr(Engine, "_judge", fragile)
    lines = [json.dumps(r) for r in _rows()] + [_line(event_id="poison"), _line(event_id="big", quantity="10000")]
    result = run_check(load_licence_da_nang(), read_jsonl(lines, "f.jsonl"), source="f.jsonl")
    assert [(e.line, e.event_id) for e in result.errors] == [(4, "poison")]
    assert "could not be checked (ArithmeticError: rule could not compute)" in result.errors[0].reason
    kinds = [(f.kind, f.evidence) for f in result.findings]
    assert ("invalid_event", ("poison",)) in kinds and ("max_transaction_value", ("big",)) in kinds
    assert "line 4" in next(f.message for f in result.findings if f.kind == "invalid_event")


def load_licence_da_nang() -> Any:
    from sandboxwatch.rules_engine.licence import load_licence

    return load_licence(DA_NANG)


# Padding that would make an address miss its blocklist or registered-wallet match (docs/events.md, Bounds).
DEAD = "0x000000000000000000000000000000000000dead"
PADDED = [
    (" " + DEAD, "whitespace U+0020 at character 1"),
    (DEAD + " ", "whitespace U+0020 at character 43"),
    (DEAD + "\u200b", "invisible character U+200B at character 43"),
    ("\u200c" + DEAD, "invisible character U+200C at character 1"),
    (DEAD[:2] + "\u200d" + DEAD[2:], "invisible character U+200D at character 3"),
    (DEAD + "\u2060", "invisible character U+2060 at character 43"),
    ("\ufeff" + DEAD, "invisible character U+FEFF at character 1"),
    (DEAD + "\u00a0", "whitespace U+00A0 at character 43"),
    ("\u3000" + DEAD, "whitespace U+3000 at character 1"),
    (DEAD + "\u2800", "invisible character U+2800 at character 43"),
    (DEAD[:10] + " " + DEAD[10:], "whitespace U+0020 at character 11"),
]
BLANK_NAMES = [" ", "\u200b", "\u3000", "\u00a0", "\u2800", "-", " - ", "\u200b\u200b"]


def _address_rows(value: str) -> list[tuple[dict[str, Any], str]]:
    """Every address-like field of the events carrying ``value``, with the field the error must name."""

    def transfer(**changes: str) -> dict[str, Any]:
        row = {"event_id": "t1", "type": "transfer", "participant": P, "ts": ts(hour=3), "chain": "ethereum",
               "tx_hash": "0x1", "log_index": 0, "block": 5, "from": "0xa", "to": "0xb", "asset": "USDT",
               "amount": "1", "token": "0xdac17f958d2ee523a2206206994597c13d831ec7"}  # fmt: skip
        return row | changes

    return [
        (onchain(participant=P, address=value), "address"),
        (onchain("deposit", participant=P, address=value), "address"),
        (onchain(participant=P, tx_hash=value), "tx_hash"),
        (onchain(participant=P, chain=value), "chain"),
        (funds(participant=P, address=value), "address"),  # a bank movement's optional address too
        (transfer(to=value), "to"),
        (transfer(**{"from": value}), "from"),
        (transfer(tx_hash=value), "tx_hash"),
        (transfer(chain=value), "chain"),
        (transfer(token=value), "token"),
        (account(participant=P, wallets=["0xaa", value]), "wallets[1]"),
    ]


@pytest.mark.parametrize(("value", "reason"), PADDED)
def test_an_address_with_a_blank_or_invisible_character_is_refused(value: str, reason: str) -> None:
    for row, field in _address_rows(value):
        error = _error(json.dumps(row))
        assert error.field == field and reason in error.reason, (row, error)
        assert "may hold no blank or invisible character" in error.reason
        fast = assert_same(row)  # the fast path refuses it too, with the generic path's error
        assert fast == ("error", field, error.reason)


def test_valid_addresses_are_accepted_and_compared_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for row, _ in _address_rows("0xAbC123"):
        assert not isinstance(parse_json_line(json.dumps(row), "f", 1), EventError), row
        assert assert_same(row)[0] == "event"
    rows = [price(participant=P), account(participant=P, wallets=["0xaa"])]
    rows += [onchain(participant=P, event_id="w1", when=ts(hour=3), address=DEAD.upper().replace("0X", "0x"))]
    path = tmp_path / "blocked.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert _check(path) == 1
    findings = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(f["rule"] for f in findings) == ["blocklist", "wallets"]  # case still ignored, as before


def test_check_counts_each_padded_address_as_an_invalid_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: list[dict[str, Any]] = [price(participant=P), account(participant=P, wallets=[DEAD])]
    for index, (value, _) in enumerate(PADDED):
        rows.append(onchain(participant=P, event_id=f"w{index}", when=ts(hour=3), address=value))
    rows.append(account("c2", participant=P, wallets=["0xbb", DEAD + "\u200b"]))
    path = tmp_path / "padded.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert _check(path) == 0  # no blocklist, no wallet finding: nothing padded was judged
    captured = capsys.readouterr()
    findings = [json.loads(line) for line in captured.out.splitlines()]
    assert [f["rule"] for f in findings] == ["invalid_event"] * (len(PADDED) + 1)
    messages = sorted(f["message"] for f in findings)
    assert sum("field 'address'" in m for m in messages) == len(PADDED)
    assert sum("field 'wallets[1]'" in m for m in messages) == 1
    assert f"({len(PADDED) + 1} invalid, " in captured.err


@pytest.mark.parametrize("name", BLANK_NAMES)
def test_a_travel_rule_name_without_a_letter_or_digit_is_missing(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A blank or invisible name is read (a text within the bounds) and counts as missing, as an empty one
    always did: the large withdrawal gets its travel-rule finding (docs/events.md)."""
    party = {"name": name, "account": "acc-9"}
    named = {"name": "Nguyễn Văn A", "account": "acc-1"}
    rows = [price(participant=P), account(participant=P, wallets=["0xaa"])]
    cases = {"w1": {"originator": party, "beneficiary": named}, "w2": {"originator": named, "beneficiary": party}}
    for hour, (event_id, travel) in enumerate(cases.items(), start=3):
        row = onchain(participant=P, event_id=event_id, when=ts(hour=hour), amount="2000", travel_rule=travel)
        assert assert_same(row)[0] == "event"
        assert not isinstance(parse_json_line(json.dumps(row), "f", 1), EventError)
        rows.append(row)
    rows.append(onchain(participant=P, event_id="w3", when=ts(hour=5), amount="2000",
                        travel_rule={"originator": named, "beneficiary": {"name": "李 2"}}))  # fmt: skip
    path = tmp_path / "blank-names.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert _check(path) == 1
    findings = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    travel_findings = sorted((f["evidence"], f["message"]) for f in findings if f["rule"] == "travel-rule")
    assert travel_findings == [
        (["w1"], "On-chain withdrawal w1 worth 52000000 VND lacks the originator name."),
        (["w2"], "On-chain withdrawal w2 worth 52000000 VND lacks the beneficiary name."),
    ]


def test_a_retraction_names_its_chain_and_block_hash_without_padding() -> None:
    row = {"event_id": "r1", "type": "retraction", "participant": P, "ts": ts(hour=3), "retracts": "t1",
           "reason": "reorg", "chain": "ethereum", "block": 5, "block_hash": "0xbb"}  # fmt: skip
    assert not isinstance(parse_json_line(json.dumps(row), "f", 1), EventError)
    for field, value in (("chain", "ethereum "), ("block_hash", "\u200b0xbb")):
        error = _error(json.dumps(row | {field: value}))
        assert error.field == field and "may hold no blank or invisible character" in error.reason
