"""Bad input lines are reported with line, field and reason, and never stop the rest."""

from __future__ import annotations

from decimal import Decimal

from sandboxwatch.rules_engine.event_reader import read_csv, read_jsonl
from sandboxwatch.rules_engine.events import EventError, FundsEvent, TradeEvent

GOOD = (
    '{"event_id":"t1","type":"trade","participant":"p","ts":"2025-10-01T10:00:00Z","account":"a",'
    '"side":"buy","base":"USDT","quote":"VND","quantity":"1.5","price":"26000","note":"kept"}'
)


def _errors(lines: list[str]) -> list[EventError]:
    return [item for _, item in read_jsonl(lines, "f.jsonl") if isinstance(item, EventError)]


def test_valid_trade_keeps_decimals_and_extra_fields() -> None:
    ((line, event),) = list(read_jsonl([GOOD], "f.jsonl"))
    assert line == 1 and isinstance(event, TradeEvent)
    assert event.quantity == Decimal("1.5") and event.extra == {"note": "kept"}
    assert event.ts.utcoffset() is not None


def test_each_kind_of_bad_line() -> None:
    cases = {
        "not json": (None, "not valid JSON"),
        "[1,2]": (None, "JSON object"),
        GOOD.replace('"quantity":"1.5"', '"quantity":1.5'): ("quantity", "not a float"),
        GOOD.replace('"quantity":"1.5"', '"quantity":"abc"'): ("quantity", "not a decimal"),
        GOOD.replace('"quantity":"1.5"', '"quantity":"-1"'): ("quantity", "greater than zero"),
        GOOD.replace('"quantity":"1.5"', '"quantity":"NaN"'): ("quantity", "finite"),
        GOOD.replace('"side":"buy"', '"side":"hold"'): ("side", "one of buy, sell"),
        GOOD.replace('"ts":"2025-10-01T10:00:00Z"', '"ts":"2025-10-01T10:00:00"'): ("ts", "offset"),
        GOOD.replace('"type":"trade"', '"type":"swap"'): ("type", "unknown event type"),
        GOOD.replace('"account":"a",', ""): ("account", "missing"),
        GOOD.replace('"participant":"p"', '"participant":7'): ("participant", "string"),
    }
    lines = ["", *cases, GOOD]
    items = list(read_jsonl(lines, "f.jsonl"))
    assert isinstance(items[-1][1], TradeEvent) and items[-1][0] == len(lines)
    errors = [item for _, item in items if isinstance(item, EventError)]
    assert len(errors) == len(cases)
    for error, (field, reason) in zip(errors, cases.values(), strict=True):
        assert error.field == field
        assert reason in error.reason
        assert error.describe().startswith(f"f.jsonl:{error.line}: ")
    assert errors[2].event_id == "t1" and errors[2].participant == "p"


def test_onchain_funds_need_chain_fields_bank_ones_do_not() -> None:
    base = '{"event_id":"d","type":"deposit","participant":"p","ts":"2025-10-01T10:00:00+07:00","account":"a",'
    bank = base + '"asset":"VND","amount":"100","rail":"bank"}'
    chain = base + '"asset":"USDT","amount":"1","rail":"onchain","chain":"ethereum","tx_hash":"0x1"}'
    items = [item for _, item in read_jsonl([bank, chain], "f")]
    assert isinstance(items[0], FundsEvent)
    assert isinstance(items[1], EventError) and items[1].field == "address"


def test_csv_with_lists_booleans_and_json_cells() -> None:
    text = [
        "event_id,type,participant,ts,site,account,kyc_status,investor_class,bank_account_verified,wallets\n",
        "a1,account,p,2025-10-01T10:00:00+07:00,DN-NN,c1,verified,foreign,true,0xA;0xB\n",
        "a2,account,p,2025-10-01T10:00:00+07:00,DN-NN,c1,verified,foreign,maybe,\n",
        "a3,account,p,2025-10-01T10:00:00+07:00,DN-NN,c1,verified,foreign,true,0xA,extra\n",
    ]
    items = list(read_csv(text, "f.csv"))
    first = items[0][1]
    assert not isinstance(first, EventError)
    assert first.wallets == ("0xA", "0xB") and first.bank_account_verified is True  # type: ignore[attr-defined]
    assert isinstance(items[1][1], EventError) and items[1][1].field == "bank_account_verified"
    assert items[1][0] == 3
    assert isinstance(items[2][1], EventError) and "more cells" in items[2][1].reason


def test_report_requirements() -> None:
    head = '{"event_id":"r","type":"report","participant":"p","ts":"2025-10-01T10:00:00+07:00",'
    errors = _errors([head + '"report_type":"periodic"}', head + '"report_type":"large_value"}'])
    assert [e.field for e in errors] == ["period", "refs"]


def test_recurring_names_are_shared_between_events() -> None:
    """Accounts, participants and assets are interned: per-account tables match them by identity, and a
    day of parsed events holds one copy of each name."""
    second = GOOD.replace('"t1"', '"t2"')
    (_, first), (_, other) = list(read_jsonl([GOOD, second], "f.jsonl"))
    assert isinstance(first, TradeEvent) and isinstance(other, TradeEvent)
    assert first.account is other.account and first.participant is other.participant
    assert first.base is other.base and first.type is other.type
    assert first.event_id == "t1" and other.event_id == "t2"


def test_timestamps_share_one_zone_per_offset_and_keep_the_instant() -> None:
    import pytest

    from sandboxwatch.rules_engine.timestamps import parse_timestamp

    a = parse_timestamp("2025-11-08T12:00:00.123456+07:00")
    b = parse_timestamp("2025-11-08T05:00:00.123456+00:00")
    c = parse_timestamp("2025-11-08T13:30:00-04:30")
    assert a.tzinfo is parse_timestamp("2025-10-01T00:00:00+07:00").tzinfo
    assert a == b and a.isoformat() == "2025-11-08T12:00:00.123456+07:00"
    assert b.tzinfo is parse_timestamp("2025-11-08T05:00:00Z").tzinfo
    assert c.utcoffset() is not None and c.isoformat().endswith("-04:30")
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_timestamp("2025-11-08T12:00:00")
