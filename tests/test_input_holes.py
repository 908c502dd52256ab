"""Issue 13's remaining holes: each input a participant or an operator controls is bounded and refused with a
reason, never trusted or read without limits (docs/events.md, docs/licence.md)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from sandboxwatch.rules_engine.event_parser import FieldError, event_from_dict
from sandboxwatch.rules_engine.event_reader import MAX_LINE_CHARS, open_events, read_events
from sandboxwatch.rules_engine.events import EventError, TradeEvent
from sandboxwatch.rules_engine.licence import MAX_BYTES, LicenceError, load_licence, parse_licence
from sandboxwatch.rules_engine.licence_params import ParamError, ParamReader
from sandboxwatch.rules_engine.money import parse_event_decimal
from sandboxwatch.store.clickhouse_store import Store
from tests.helpers import DA_NANG, HEADER, licence_with, onchain, price, run, sandboxwatch_cli, ts


def test_record_licence_reads_the_file_within_the_licence_bounds(store: Store, tmp_path: Path) -> None:
    """The store reads the licence again when it records it: a file swapped meanwhile for a far larger one
    (or a directory) is refused like load_licence refuses it, not read whole into memory and the store."""
    path = tmp_path / "licence.yaml"
    path.write_bytes(DA_NANG.read_bytes().replace(b"\n", b"\r\n"))
    licence = load_licence(path)
    digest = store.record_licence(licence, path)
    assert digest == store.record_licence(licence, path)
    [(body,)] = store.backend.rows(f"SELECT body FROM {store.db}.licence_versions")
    assert body == DA_NANG.read_text()  # newlines as \n, whatever the file's
    with path.open("wb") as sparse:
        sparse.truncate(MAX_BYTES + 1)
    with pytest.raises(LicenceError, match=f"larger than {MAX_BYTES:,} bytes"):
        store.record_licence(licence, path)
    path.unlink()
    path.mkdir()
    with pytest.raises(LicenceError, match=r"is not a regular file \(a directory\)"):
        store.record_licence(licence, path)
    assert store.backend.rows(f"SELECT count() FROM {store.db}.licence_versions") == [(1,)]


NUMBERS = ["12", "-3", "1.5", "2.5e8", "1E3", "2_0", "+5", " 5", "5 ", "1.", ".5", "0x10", "3:20:00", "inf", ".nan"]


@pytest.mark.parametrize("text", NUMBERS)
def test_a_licence_number_and_an_event_number_follow_one_grammar(text: str) -> None:
    """One check of the decimal grammar (money.parse_event_decimal) for events and licences: a text is a
    number in both or in neither, with the same value."""
    try:
        event_value = parse_event_decimal(text)
    except ValueError:
        event_value = None
    try:
        licence_value = ParamReader({"max": text}).decimal("max", positive=False)
    except ParamError as exc:
        assert event_value is None, exc
        return
    assert licence_value == event_value


def _trade(**fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "event_id": "e1",
        "type": "trade",
        "participant": "p1",
        "ts": "2025-10-01T10:00:00+07:00",
        "site": "DN-SP2",
        "account": "c1",
        "side": "buy",
        "base": "USDT",
        "quote": "VND",
        "quantity": "100",
        "price": "26000",
        "counterparty_account": "c2",
        "fee": "1",
        "fee_asset": "VND",
    }
    row.update(fields)
    return row


def _refusal(row: Mapping[str, object]) -> tuple[str, str]:
    """The field and reason the parser gives, the same with and without its fast path."""
    from tests.test_event_fast_path import generic_only

    reasons = []
    for generic in (False, True):
        with generic_only() if generic else contextlib.nullcontext(), pytest.raises(FieldError) as caught:
            event_from_dict(row)
        reasons.append((caught.value.field, caught.value.reason))
    assert reasons[0] == reasons[1]
    return reasons[0]


IDENTIFIER = "an identifier is matched exactly, so it may hold no blank or invisible character"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("account", "c 1", "holds whitespace U+0020 at character 2"),
        ("account", " c1", "holds whitespace U+0020 at character 1"),
        ("account", "c1\u00a0", "holds whitespace U+00A0 at character 3"),
        ("account", "c\u200b1", "holds an invisible character U+200B at character 2"),
        ("counterparty_account", "c2 ", "holds whitespace U+0020 at character 3"),
        ("base", "US\u2060DT", "holds an invisible character U+2060 at character 3"),
        ("quote", "\u3000VND", "holds whitespace U+3000 at character 1"),
        ("fee_asset", "VND\u3164", "holds an invisible character U+3164 at character 4"),
        ("participant", "p1 ", "holds whitespace U+0020 at character 3"),
        ("site", "DN SP2", "holds whitespace U+0020 at character 3"),
        ("event_id", "e\ufeff1", "holds an invisible character U+FEFF at character 2"),
        ("event_id", " ", "holds whitespace U+0020 at character 1"),
    ],
)
def test_identifiers_with_blanks_or_invisible_characters_are_refused(field: str, value: str, reason: str) -> None:
    assert _refusal(_trade(**{field: value})) == (field, f"{reason}: {IDENTIFIER}")


def test_other_identifier_fields_are_refused_too() -> None:
    price = {"event_id": "p", "type": "price", "participant": "p1", "ts": "2025-10-01T10:00:00+07:00"}
    price |= {"base": "USDT", "quote": "VND", "price": "26000", "source": "binance "}
    assert _refusal(price) == ("source", f"holds whitespace U+0020 at character 8: {IDENTIFIER}")
    funds = {"event_id": "d", "type": "deposit", "participant": "p1", "ts": "2025-10-01T10:00:00+07:00"}
    funds |= {"account": "c1", "asset": "USDT\u00ad", "amount": "1", "rail": "bank"}
    assert _refusal(funds) == ("asset", f"holds an invisible character U+00AD at character 5: {IDENTIFIER}")
    report = {"event_id": "r", "type": "report", "participant": "p1", "ts": "2025-10-01T10:00:00+07:00"}
    assert _refusal(report | {"report_type": "large_value", "refs": ["e1", "e2 "]}) == (
        "refs[1]",
        f"holds whitespace U+0020 at character 3: {IDENTIFIER}",
    )
    assert _refusal(report | {"report_type": "periodic", "period": "2025 -Q3"})[0] == "period"
    # Identifiers may be any script; only blanks and invisible characters are refused.
    named = event_from_dict(_trade(account="Nguyễn-Văn-A"))
    assert isinstance(named, TradeEvent) and named.account == "Nguyễn-Văn-A"


LOOKALIKE = "0x000000000000000000000000000000000000d\u0435ad"  # U+0435 CYRILLIC SMALL LETTER IE


def test_an_address_with_a_lookalike_letter_is_refused() -> None:
    """A Cyrillic 'е' in a blocklisted address displays as the listed address and never matched it: the
    event was judged clean. An address is ASCII by its chain's grammar, so such a line is invalid."""
    funds = {"event_id": "w", "type": "withdrawal", "participant": "p1", "ts": "2025-10-01T10:00:00+07:00"}
    funds |= {"account": "c1", "asset": "USDT", "amount": "1", "rail": "onchain", "chain": "ethereum"}
    funds |= {"address": LOOKALIKE, "tx_hash": "0x01"}
    field, reason = _refusal(funds)
    assert (field, reason.split(":")[0]) == (
        "address",
        "holds the non-ASCII character U+0435 (CYRILLIC SMALL LETTER IE) at character 40",
    )
    transfer: dict[str, object] = {"event_id": "t", "type": "transfer", "participant": "p1"}
    transfer |= {"ts": "2025-10-01T10:00:00+07:00", "chain": "ethereum", "tx_hash": "0x01", "log_index": 0}
    transfer |= {"block": 1, "from": "0x\u03bf1", "to": "0xaa", "asset": "USDT", "amount": "1"}
    assert _refusal(transfer)[0] == "from"  # U+03BF GREEK SMALL LETTER OMICRON
    account = {"event_id": "a", "type": "account", "participant": "p1", "ts": "2025-10-01T10:00:00+07:00"}
    account |= {"account": "c1", "kyc_status": "verified", "investor_class": "domestic"}
    assert _refusal(account | {"wallets": ["0xaa", "0x\u0430a"]})[0] == "wallets[1]"


def test_a_lookalike_of_a_blocklisted_address_is_an_invalid_event_never_a_clean_one(tmp_path: Path) -> None:
    """Through check, as an operator runs it: the line is reported invalid (exit 1: a finding), never clean."""
    line = {"event_id": "w1", "type": "withdrawal", "participant": "alphatrue-basal-pay"}
    line |= {"ts": "2025-10-01T10:00:00+07:00", "site": "DN-SP2", "account": "c1", "asset": "USDT"}
    line |= {"amount": "1", "rail": "onchain", "chain": "ethereum", "address": LOOKALIKE, "tx_hash": "0x01"}
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(line) + "\n", encoding="utf-8")
    result = sandboxwatch_cli("check", "--licence", str(DA_NANG), "--events", str(events))
    assert "field 'address': holds the non-ASCII character U+0435" in result.stderr, result.stderr
    assert result.returncode != 0, result.stderr


def _read(path: Path) -> list[tuple[int, str]]:
    """(line, event id or 'error: reason') of a file as check and up read it (open_events, read_events)."""
    found = []
    with open_events(str(path), None) as (lines, source, fmt):
        for number, item in read_events(lines, source, fmt):
            found.append((number, item.reason if isinstance(item, EventError) else item.event_id))
    return found


ACCOUNT = '"type":"account","participant":"p1","ts":"2025-10-01T10:00:00+07:00","kyc_status":"verified"'


def test_a_csv_bom_after_a_blank_first_line_keeps_every_row(tmp_path: Path) -> None:
    """The BOM stayed in the header's first column ("\\ufeffevent_id"), so every row lacked its event id."""
    header = "event_id,type,participant,ts,account,kyc_status,investor_class\n"
    rows = "".join(f"a{i},account,p1,2025-10-01T10:00:00+07:00,c{i},verified,domestic\n" for i in range(3))
    path = tmp_path / "events.csv"
    path.write_bytes(b"\n\xef\xbb\xbf" + (header + rows).encode())
    assert _read(path) == [(3, "a0"), (4, "a1"), (5, "a2")]


def test_a_bare_carriage_return_inside_a_jsonl_line_does_not_split_it(tmp_path: Path) -> None:
    """Only a line feed ends a JSONL line, as in the stream: a bare CR between two fields is JSON whitespace.
    It split the line in two invalid ones and moved every later line number by one."""
    lines = [
        '{"event_id":"a1",\r' + ACCOUNT + ',"account":"c1","investor_class":"domestic"}',
        "{" + ACCOUNT + ',"event_id":"a2","account":"c2","investor_class":"domestic"}\r',  # CRLF: a line end
        "{" + ACCOUNT + ',"event_id":"a3","account":"c3","investor_class":"nobody"}',
        "",
        "{" + ACCOUNT + ',\r\r"event_id":"a4","account":"c4","investor_class":"domestic"}',
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode())
    assert _read(path) == [
        (1, "a1"),
        (2, "a2"),
        (3, "must be one of foreign, domestic, not 'nobody'"),
        (5, "a4"),
    ]
    # check names the same line, as an editor counts it
    result = sandboxwatch_cli("check", "--licence", str(DA_NANG), "--events", str(path))
    assert f"{path}:3: field 'investor_class'" in result.stderr, result.stderr


def test_a_joined_line_stays_bounded(tmp_path: Path) -> None:
    """Pieces ended by bare CRs are joined only up to the line bound: past it the line is refused as too long
    (and the next line keeps its own number), never held whole in memory."""
    piece = "x" * 1000 + "\r"
    path = tmp_path / "events.jsonl"
    later = "{" + ACCOUNT + ',"event_id":"a9","account":"c9","investor_class":"domestic"}\n'
    path.write_bytes(("{" + piece * (3 * MAX_LINE_CHARS // 1000) + "}\n" + later).encode())
    assert _read(path) == [(1, f"a line longer than {MAX_LINE_CHARS} characters"), (2, "a9")]


CAP = "{id: cap, kind: max_transaction_value, severity: breach, clause: c, max: 200000000, applies_to: [deposit]}"


def _usdt_deposit(when: str, amount: str = "100000") -> dict[str, object]:
    return onchain("deposit", "c1", when, amount)


def test_a_price_from_an_untrusted_source_never_values_an_event() -> None:
    """The participant's own feed prices USDT at 1e-18 VND: before, the latest price of any source valued the
    2.6-billion-VND deposit at nothing and the cap never fired. Now only the licence's sources count, and the
    untrusted source is reported once per pair."""
    found = run(
        licence_with(CAP),
        [
            price(ts(hour=1), "26000", source="binance"),
            price(ts(hour=2), "0.000000000000000001", source="own-feed"),
            price(ts(hour=3), "0.000000000000000001", source="own-feed"),  # same source and pair: not again
            _usdt_deposit(ts(hour=4)),
        ],
    )
    assert [(f.rule, f.observed) for f in found] == [("price_refused", None), ("cap", Decimal("2600000000"))]
    refused = found[0]
    assert refused.severity == "warning" and refused.ts == datetime.fromisoformat(ts(hour=2))
    assert refused.message.startswith("price e") and "from own-feed was not used to value events: 'own-feed' is" in (
        refused.message
    )
    assert "(reference_prices.sources: binance)" in refused.message


def test_an_event_with_only_untrusted_prices_stays_loud() -> None:
    found = run(licence_with(CAP), [price(ts(hour=1), "1", source="own-feed"), _usdt_deposit(ts(hour=2))])
    assert [f.rule for f in found] == ["price_refused", "valuation_unavailable"]
    assert "no reference price from a trusted source" in found[1].message


def test_another_participants_untrusted_price_is_not_used_nor_reported_here() -> None:
    other = price(ts(hour=2), "1", source="own-feed", participant="p2")
    found = run(licence_with(CAP), [price(ts(hour=1), "26000"), other, _usdt_deposit(ts(hour=4))])
    assert [(f.rule, f.observed) for f in found] == [("cap", Decimal("2600000000"))]


def test_a_trusted_price_jumping_beyond_max_step_is_not_used() -> None:
    stepped = parse_licence(
        HEADER.replace("{sources: [binance]}", "{sources: [binance], max_step: 10}") + f"  - {CAP}\n"
    )
    found = run(
        stepped,
        [
            price(ts(hour=1), "26000"),
            price(ts(hour=2), "2600", event_id="ten-times-down"),  # exactly the factor: used
            price(ts(hour=3), "259.99", event_id="spike"),  # beyond it: refused, and 2600 stays the price
            _usdt_deposit(ts(hour=4)),
            price(ts(hour=5), "26000", event_id="back-up"),  # x10 from 2600: used
            _usdt_deposit(ts(hour=6)),
        ],
    )
    assert [(f.rule, f.evidence, f.observed) for f in found] == [
        ("price_refused", ("spike",), None),
        ("cap", (found[1].evidence[0],), Decimal("260000000")),
        ("cap", (found[2].evidence[0],), Decimal("2600000000")),
    ]
    assert "it moved from 2600 to 259.99, beyond the factor 10" in found[0].message


@pytest.mark.parametrize(
    ("header", "rules", "expected"),
    [
        (
            "",
            [CAP],
            "licence header: field 'reference_prices': missing, and rule(s) 'cap' read reference prices",
        ),
        (
            "",
            ["{id: fp, kind: price_deviation, severity: warning, clause: c, max_pct: 3, sources: [binance]}"],
            "licence header: field 'reference_prices': missing, and rule(s) 'fp' read reference prices",
        ),
        (
            "  reference_prices: {sources: [binance]}\n",
            ["{id: fp, kind: price_deviation, severity: warning, clause: c, max_pct: 3, sources: [binance, okx]}"],
            "rule 'fp' (line 11): field 'sources': 'okx' not among the trusted price sources "
            "(reference_prices.sources: binance)",
        ),
        ("  reference_prices: {sources: []}\n", [CAP], "field 'reference_prices.sources': must be a non-empty list"),
        (
            "  reference_prices: {sources: ['binance ']}\n",
            [CAP],
            "field 'reference_prices.sources': item 1 ('binance ') holds whitespace U+0020 at character 8",
        ),
        (
            "  reference_prices: {sources: [binance], max_step: 1}\n",
            [CAP],
            "field 'reference_prices.max_step': must be a factor above 1",
        ),
        (
            "  reference_prices: {sources: [binance], max_step: .inf}\n",
            [CAP],
            "field 'reference_prices.max_step': must be a finite number",
        ),
        (
            "  reference_prices: {sources: [binance], step: 10}\n",
            [CAP],
            "field 'reference_prices.step': not a field of reference_prices (sources, max_step, publishers)",
        ),
        (
            "  reference_prices: {sources: [binance], publishers: feed}\n",
            [CAP],
            "field 'reference_prices.publishers': must be a list of publisher names",
        ),
        (
            "  reference_prices: {sources: [binance], publishers: ['feed ']}\n",
            [CAP],
            "field 'reference_prices.publishers': item 1 ('feed ') holds whitespace U+0020 at character 5",
        ),
        ("  reference_prices: [binance]\n", [CAP], "field 'reference_prices': must be a mapping with sources"),
    ],
)
def test_reference_prices_are_validated(header: str, rules: list[str], expected: str) -> None:
    text = HEADER.replace("  reference_prices: {sources: [binance]}\n", header)
    with pytest.raises(LicenceError) as caught:
        parse_licence(text + "".join(f"  - {rule}\n" for rule in rules))
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_a_licence_without_price_rules_needs_no_reference_prices() -> None:
    text = HEADER.replace("  reference_prices: {sources: [binance]}\n", "")
    licence = parse_licence(text + "  - {id: wash, kind: self_trade, severity: breach, clause: c}\n")
    assert licence.header.price_sources == ()


def test_check_and_up_give_the_same_findings_for_these_inputs(tmp_path: Path, store: Store) -> None:
    """The live path (``up``: the replay through the stream worker's monitor into the store) and ``check``
    agree on untrusted and implausible prices, refused identifiers and lookalike addresses, and a bare CR."""
    from tests.test_replay_matches_check import check_ids, up_ids

    header = HEADER.replace("{sources: [binance]}", "{sources: [binance], max_step: 10}")
    licence = parse_licence(header + f"  - {CAP}\n")
    rows = [
        price(ts(hour=1), "26000"),
        price(ts(hour=2), "0.000000000000000001", source="own-feed"),
        price(ts(hour=2, minute=30), "1", event_id="spike"),
        _usdt_deposit(ts(hour=3)),
        onchain("deposit", "c 1", ts(hour=4), "100000"),
        onchain("deposit", "c1", ts(hour=5), "100000", address="0x\u0430a"),
    ]
    text = "".join(json.dumps(row) + "\n" for row in rows)
    text = text.replace('"type": "deposit", ', '"type": "deposit",\r ', 1)  # a bare CR inside the first deposit
    path = tmp_path / "events.jsonl"
    path.write_bytes(text.encode())
    expected = check_ids(licence, path)
    assert len(expected) == 5  # untrusted source, spike, the cap, two invalid lines
    assert up_ids(licence, path, store) == expected
