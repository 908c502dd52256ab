"""The holes left after the first "every input is hostile" pass (issue #13): each is a test that failed first."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandboxwatch.rules_engine.licence import LicenceError, load_licence
from tests.helpers import DA_NANG, account, licence_with, onchain, rules_of, run

BASE = DA_NANG.read_text()
SECRET = "SECRET_TOKEN=hunter2-do-not-leak"


def _blocklist(tmp_path: Path, entry: str) -> Path:
    licence = tmp_path / "lic.yaml"
    licence.write_text(BASE.replace('addresses: ["0x000000000000000000000000000000000000dead"]', entry))
    return licence


def test_a_referenced_file_is_named_never_echoed(tmp_path: Path) -> None:
    # As /proc/self/environ would be: text that is not an address list, holding a secret on its first line.
    (tmp_path / "environ").write_text(f"{SECRET}\nPATH=/usr/bin\n")
    with pytest.raises(LicenceError) as caught:
        load_licence(_blocklist(tmp_path, "file: 'environ'"))
    [problem] = caught.value.problems
    assert f"address list {tmp_path / 'environ'}, line 1: not an address (3 to 128 letters and digits" in problem
    assert "SECRET" not in problem and "hunter2" not in problem and "PATH" not in problem


def test_the_real_proc_environ_is_not_echoed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOXWATCH_PROBE", "leak-me-not")
    with pytest.raises(LicenceError) as caught:
        load_licence(_blocklist(tmp_path, "file: '/proc/self/environ'"))
    [problem] = caught.value.problems
    assert "/proc/self/environ" in problem
    assert "leak-me-not" not in problem and "SANDBOXWATCH_PROBE" not in problem and "=" not in problem


EVM = "0x7F367cc41522ce07553e823bf3be79a889debe1b"


@pytest.mark.parametrize(
    "listed",
    [
        EVM,
        EVM.lower(),
        EVM.upper().replace("0X", "0x"),
        EVM[2:],  # no 0x
        EVM[2:].upper(),
        "0X" + EVM[2:],
    ],
)
@pytest.mark.parametrize("seen", [EVM, EVM.lower(), EVM[2:].lower(), "0X" + EVM[2:].upper()])
def test_an_evm_address_matches_however_either_side_writes_it(tmp_path: Path, listed: str, seen: str) -> None:
    inline = load_licence(_blocklist(tmp_path, f'addresses: ["{listed}"]'))
    (tmp_path / "list.txt").write_text(f"# published: 2025-10-01\n{listed}\n")
    filed = load_licence(_blocklist(tmp_path, "file: 'list.txt'"))
    for licence in (inline, filed):
        rule = next(r for r in licence.rules if r.kind == "blocked_addresses")
        assert rule.params.listing(seen) is not None, (listed, seen)
        assert rule.params.listing("0x" + "0" * 40) is None


def test_a_blocked_address_without_0x_is_found_in_an_event() -> None:
    rule = f'{{id: bl, kind: blocked_addresses, severity: breach, clause: x, addresses: ["{EVM[2:]}"]}}'
    licence = licence_with(rule)
    found = run(licence, [onchain(address=EVM.lower(), event_id="w1")])
    assert [(f.rule, f.evidence) for f in found] == [("bl", ("w1",))]


def test_a_registered_wallet_matches_with_or_without_0x() -> None:
    licence = licence_with("{id: wallet, kind: registered_wallet, severity: breach, clause: x}")
    rows = [account(wallets=[EVM[2:]]), onchain(address=EVM.upper().replace("0X", "0x"), event_id="w1")]
    assert rules_of(run(licence, rows)) == []
    other = [account(wallets=[EVM[2:]]), onchain(address="0x" + "1" * 40, event_id="w2")]
    assert [f.evidence for f in run(licence, other)] == [("w2",)]


def _problems(text: str) -> list[str]:
    from sandboxwatch.rules_engine.licence import parse_licence

    with pytest.raises(LicenceError) as caught:
        parse_licence(text, "l.yaml")
    return caught.value.problems


@pytest.mark.parametrize(
    ("old", "new", "field", "shown", "reason"),
    [
        ("sites: [DN-SP2,", 'sites: ["DN-SP2 ",', "'sites'", "'DN-SP2 '", "holds whitespace U+0020 at character 7"),
        ("assets: [USDT,", 'assets: ["USDT\\u200b",', "'assets'", "'USDT\\u200b'", "invisible character U+200B"),
        ("currencies: [VND]", 'currencies: ["\\u00a0VND"]', "'currencies'", "'\\xa0VND'", "whitespace U+00A0"),
        ("classes: [foreign,", 'classes: ["for\\u2060eign",', "'classes'", "'for\\u2060eign'", "U+2060"),
        ("classes: [foreign,", 'classes: ["",', "'classes'", "''", "is empty"),
        ("classes: [foreign,", 'classes: ["a\\u202eb",', "'classes'", "'a\\u202eb'", "bidirectional"),
    ],
)
def test_a_licence_list_item_with_a_blank_or_invisible_character_is_refused(
    old: str, new: str, field: str, shown: str, reason: str
) -> None:
    assert old in BASE
    [problem] = _problems(BASE.replace(old, new, 1))
    assert f"field {field}: item 1 ({shown}) " in problem, problem
    assert reason in problem, problem


def test_the_reason_text_is_the_one_events_get() -> None:
    from sandboxwatch.rules_engine.event_parser import identifier_problem

    [problem] = _problems(BASE.replace("assets: [USDT,", 'assets: ["USDT\\u200b",', 1))
    reason = identifier_problem("USDT\u200b")
    assert problem.endswith(f"item 1 ('USDT\\u200b') {reason}"), problem


def test_the_licence_participant_and_retraction_sources_refuse_invisible_characters() -> None:
    [problem] = _problems(BASE.replace("participant: alphatrue-basal-pay", 'participant: "alphatrue\\u200b-basal-pay"'))
    assert problem.startswith("licence header: field 'participant': 'alphatrue\\u200b-basal-pay' holds an invisible")
    [problem] = _problems(BASE.replace("retraction_sources: [ethereum]", 'retraction_sources: ["ethe\\u00adreum"]'))
    assert problem.startswith("licence header: field 'retraction_sources': item 1 ('ethe\\xadreum') holds an invisib")


_ACCOUNT = "a1,account,p,2025-10-01T10:00:00+07:00,DN-NN,c1,verified,foreign,true,"
_REPORT = "r1,report,p,2025-10-01T10:00:00+07:00,DN-NN,suspicious,"


@pytest.mark.parametrize(
    ("head", "row_head", "field", "cell", "items"),
    [
        ("wallets", _ACCOUNT, "wallets[1]", '"0xA; 0xB"', ["0xA", " 0xB"]),
        ("wallets", _ACCOUNT, "wallets[0]", '" 0xA"', [" 0xA"]),
        ("wallets", _ACCOUNT, "wallets[1]", "0xA;", ["0xA", ""]),
        ("wallets", _ACCOUNT, "wallets[1]", "0xA;;0xB", ["0xA", "", "0xB"]),
        ("wallets", _ACCOUNT, "wallets[0]", "0xA\u200b;0xB", ["0xA\u200b", "0xB"]),
        ("refs", _REPORT, "refs[1]", '"t1; t2"', ["t1", " t2"]),
        ("refs", _REPORT, "refs[0]", "t1\u00a0;t2", ["t1\u00a0", "t2"]),
    ],
)
def test_csv_list_cells_refuse_what_json_lists_refuse_with_the_same_reason(
    head: str, row_head: str, field: str, cell: str, items: list[str]
) -> None:
    import csv
    import json

    from sandboxwatch.rules_engine.event_reader import read_csv, read_jsonl
    from sandboxwatch.rules_engine.events import EventError

    if head == "wallets":
        header = "event_id,type,participant,ts,site,account,kyc_status,investor_class,bank_account_verified,wallets\n"
    else:
        header = "event_id,type,participant,ts,site,report_type,refs\n"
    [(_, from_csv)] = list(read_csv([header, row_head + cell + "\n"], "f.csv"))
    obj = dict(next(csv.DictReader([header, row_head + cell + "\n"])))
    obj[head] = items
    if head == "wallets":
        obj["bank_account_verified"] = True
    [(_, from_json)] = list(read_jsonl([json.dumps(obj)], "f.jsonl"))
    assert isinstance(from_csv, EventError) and isinstance(from_json, EventError), (from_csv, from_json)
    assert (from_csv.field, from_csv.reason) == (from_json.field, from_json.reason)
    assert from_csv.field == field


def test_a_clean_csv_list_cell_still_reads() -> None:
    from sandboxwatch.rules_engine.event_reader import read_csv
    from sandboxwatch.rules_engine.events import ReportEvent

    header = "event_id,type,participant,ts,site,report_type,refs\n"
    [(_, report)] = list(read_csv([header, _REPORT + "t1;t2\n"], "f.csv"))
    assert isinstance(report, ReportEvent) and report.refs == ("t1", "t2")


LVTR = "{id: lvtr, kind: large_value_report, severity: breach, clause: x, threshold: 1000, deadline: 24h}"


def _lvtr_state(engine: object) -> object:
    from sandboxwatch.rules_engine.engine import Engine

    assert isinstance(engine, Engine)
    return next(state for _, rule, state in engine._clock_rules if rule.id == "lvtr")


def test_report_refs_are_forgotten_once_no_event_can_use_them() -> None:
    """A flood of reports citing made-up ids over months keeps only the refs of the last deadline window."""
    import json

    from sandboxwatch.rules_engine.engine import Engine
    from sandboxwatch.rules_engine.event_parser import event_from_dict
    from tests.helpers import ev, funds, ts

    licence = licence_with(LVTR)
    engine = Engine(licence)
    found = []
    for day in range(1, 31):
        for hour in range(0, 24, 6):
            refs = [f"fake-{day}-{hour}-{n}" for n in range(500)]
            row = ev("report", ts(day=day, hour=hour), report_type="large_value", refs=refs)
            found += engine.process(event_from_dict(json.loads(json.dumps(row))))
    state = _lvtr_state(engine)
    # 30 days x 2,000 refs were filed; only those of the last deadline (24h) and lateness are kept.
    kept = len(state.reported)  # type: ignore[attr-defined]
    assert 0 < kept <= 2_000 + 500 * 2, kept
    assert len(state.expiry) == kept  # type: ignore[attr-defined]
    # A real event reported in time is still covered; an unreported one is still found.
    covered = funds(when=ts(day=30, hour=19), amount="5000", event_id="big-1")
    missed = funds(when=ts(day=30, hour=19), amount="5000", event_id="big-2")
    late_report = ev("report", ts(day=31, hour=1), report_type="large_value", refs=["big-1"])
    tail = [covered, missed, late_report, ev("price", ts(day=31, hour=23), base="USDT", quote="VND",
                                             price="26000", source="binance")]  # fmt: skip
    for row in tail:
        found += engine.process(event_from_dict(json.loads(json.dumps(row))))
    found += engine.flush()
    assert [(f.rule, f.evidence) for f in found if f.rule == "lvtr"] == [("lvtr", ("big-2",))]


def test_report_refs_are_bounded_within_one_deadline_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from sandboxwatch.rules_engine.engine import Engine
    from sandboxwatch.rules_engine.event_parser import event_from_dict
    from sandboxwatch.rules_engine.rules import large_value_report
    from tests.helpers import ev, ts

    monkeypatch.setattr(large_value_report, "MAX_REFS", 1_000)
    engine = Engine(licence_with(LVTR))
    for minute in range(10):
        refs = [f"fake-{minute}-{n}" for n in range(300)]
        row = ev("report", ts(hour=10, minute=minute), report_type="large_value", refs=refs)
        engine.process(event_from_dict(json.loads(json.dumps(row))))
    engine.flush()
    state = _lvtr_state(engine)
    assert len(state.reported) == 1_000  # type: ignore[attr-defined]
    assert "fake-9-299" in state.reported and "fake-0-0" not in state.reported  # type: ignore[attr-defined]


def test_a_snapshot_from_before_the_bound_restores_with_its_filings() -> None:
    import pickle
    from datetime import UTC, datetime

    from sandboxwatch.rules_engine.rules.large_value_report import State

    when = datetime(2025, 10, 1, tzinfo=UTC)
    state = State(reported={"a": when}, expiry=[(when, "a")])
    again = pickle.loads(pickle.dumps(state))
    assert (again.pending, again.reported, again.expiry) == ([], {"a": when}, [(when, "a")])
    legacy = State.__new__(State)
    legacy.__setstate__((None, {"pending": [], "reported": {"a": when, "b": (when, when.replace(hour=1))}}))
    assert sorted(legacy.expiry) == [(when, "a"), (when, "b"), (when.replace(hour=1), "b")]


def _stepped(step: str) -> object:
    from sandboxwatch.rules_engine.licence import parse_licence
    from tests.helpers import HEADER

    cap = "{id: cap, kind: max_transaction_value, severity: breach, clause: c, max: 200000000, applies_to: [deposit]}"
    header = HEADER.replace("{sources: [binance]}", f"{{sources: [binance, okx], max_step: {step}}}")
    return parse_licence(header + f"  - {cap}\n")


@pytest.mark.parametrize(
    ("step", "previous", "now", "used"),
    [
        # previous x step is 1500000000.0000000000000000015 exactly; the 28-digit context rounded it up to
        # ...002, so a price beyond the factor was used.
        ("1.5", "1000000000.000000000000000001", "1500000000.000000000000000002", False),
        ("1.5", "1000000000.000000000000000001", "1500000000.000000000000000001", True),
        # 1e20 / 3 rounded to 28 digits is 33333333333333333333.33333333, below a third: it was used.
        ("3", "100000000000000000000", "33333333333333333333.33333333", False),
        ("3", "100000000000000000000", "33333333333333333333.33333334", True),
    ],
)
def test_the_price_step_is_judged_exactly(step: str, previous: str, now: str, used: bool) -> None:
    from tests.helpers import price, ts

    found = run(_stepped(step), [price(ts(hour=1), previous), price(ts(hour=2), now, event_id="next")])  # type: ignore[arg-type]
    assert [(f.rule, f.evidence) for f in found] == ([] if used else [("price_refused", ("next",))])


def test_a_sources_first_price_is_held_against_the_other_trusted_sources() -> None:
    from decimal import Decimal

    from tests.helpers import price, ts

    rows = [
        price(ts(hour=1), "26000", source="binance"),
        price(ts(hour=2), "0.000000000000000001", source="okx", event_id="okx-first"),  # a first price, absurd
        onchain("deposit", "c1", ts(hour=3), "100000"),
    ]
    found = run(_stepped("10"), rows)  # type: ignore[arg-type]
    assert [(f.rule, f.evidence[0] if f.rule == "price_refused" else None, f.observed) for f in found] == [
        ("price_refused", "okx-first", None),
        ("cap", None, Decimal("2600000000")),
    ]
    assert "beyond the factor 10 the licence allows between two prices of the trusted sources" in found[0].message
    # A plausible first price of a new source is used.
    rows[1] = price(ts(hour=2), "25000", source="okx", event_id="okx-first")
    assert [f.observed for f in run(_stepped("10"), rows)] == [Decimal("2500000000")]  # type: ignore[arg-type]


@pytest.mark.parametrize("char", ["\ufe0f", "\ufe00", "\u17b4", "\u17b5", "\u180b", "\u180f", "\U000e0100", "\u2065"])
def test_default_ignorable_marks_are_refused_in_identifiers_on_both_paths(char: str) -> None:
    """A variation selector or Khmer inherent vowel renders as nothing: "c1\\ufe0f" shows as "c1"."""
    from tests.helpers import trade
    from tests.test_event_fast_path import assert_same

    fast = assert_same({**trade(), "account": "c1" + char})
    assert fast[:2] == ("error", "account")
    assert fast[2].startswith(f"holds an invisible character U+{ord(char):04X} at character 3: an identifier")
    [problem] = _problems(BASE.replace("assets: [USDT,", f'assets: ["USDT\\U{ord(char):08x}",', 1))
    assert f"holds an invisible character U+{ord(char):04X} at character 5" in problem


@pytest.mark.parametrize("day", ["", "2025-13-01", "2025-W43-2", "20251021", "2025-10-21T00:00"])
def test_simulate_refuses_a_day_that_is_not_a_calendar_date(
    day: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sandboxwatch.cli import main

    out = tmp_path / "day.jsonl"
    assert main(["simulate", "--licence", str(DA_NANG), "--out", str(out), "--day", day, "--events", "300"]) == 2
    assert f"--day {day!r} is not a calendar date YYYY-MM-DD" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("published", ["", "20251021", "2025-W43-2", "2025-10-21x"])
def test_sanctions_import_refuses_a_published_date_not_written_yyyy_mm_dd(
    published: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sandboxwatch.cli import main

    source = Path(__file__).parent / "fixtures" / "sanctions" / "sdn.xml"
    out = tmp_path / "o.txt"
    assert main(["sanctions", "import", "--source", str(source), "--out", str(out), "--published", published]) == 2
    assert f"--published {published!r} is not YYYY-MM-DD" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "value",
    [
        "00010101T000000+0000",
        "99991231T235959Z",
        "0001-01-01T00:00+00:00",
        "9999-12-31T23+00:00",
        "0001-W01-1T00:00:00+00:00",
    ],
)
def test_an_api_time_out_of_range_is_clamped_only_in_rfc_3339_form(value: str) -> None:
    from fastapi import HTTPException

    from sandboxwatch.api.app import _time

    with pytest.raises(HTTPException) as caught:
        _time(value, "from")
    assert caught.value.status_code == 422 and caught.value.detail.startswith("from: ")
    assert _time("0001-01-01T00:00:00Z", "from") is not None  # the RFC 3339 form is still clamped


@pytest.mark.parametrize("month", ["2025-10\n", "２０２５-10", "2025-1", ""])
def test_a_month_is_exactly_yyyy_mm(month: str) -> None:
    from sandboxwatch.api.monthly_report import ReportError, month_bounds

    with pytest.raises(ReportError, match="expected YYYY-MM"):
        month_bounds(month)
    assert month_bounds("2025-10")[0].isoformat() == "2025-10-01T00:00:00+07:00"


def test_a_trusted_source_walked_down_in_steps_cannot_silence_the_cap() -> None:
    from decimal import Decimal

    from tests.helpers import price, ts

    rows = [price(ts(hour=1), "26000")]
    rows += [price(ts(hour=2, minute=step), str(Decimal(26000) / 10 ** (step + 1))) for step in range(8)]
    rows.append(onchain("deposit", "c1", ts(hour=4), "100000"))
    found = run(_stepped("10"), rows)  # type: ignore[arg-type]
    assert {f.rule for f in found} & {"price_refused", "cap"}


def test_another_participants_price_claiming_a_trusted_source_cannot_value_events() -> None:
    from tests.helpers import price, ts

    rows = [price(ts(hour=1), "26000"), price(ts(hour=2), "0.000001", participant="p2")]
    rows.append(onchain("deposit", "c1", ts(hour=4), "100000"))
    found = run(licence_with(CAP_RULE), rows)
    assert [f.rule for f in found] == ["cap"]  # valued at 26000 (its own price), not p2's 0.000001


def test_a_publisher_the_licence_names_values_events_with_its_prices() -> None:
    """reference_prices.publishers: a market feed's prices count; then they also carry the cap breach."""
    from sandboxwatch.rules_engine.licence import parse_licence
    from tests.helpers import HEADER, price, ts

    header = HEADER.replace("{sources: [binance]}", "{sources: [binance], publishers: [feed]}")
    assert "publishers: [feed]" in header
    licence = parse_licence(header + f"  - {CAP_RULE}\n")
    rows = [price(ts(hour=1), "26000", participant="feed"), onchain("deposit", "c1", ts(hour=4), "100000")]
    assert [f.rule for f in run(licence, rows)] == ["cap"]
    unnamed = [price(ts(hour=1), "26000", participant="other-feed"), onchain("deposit", "c1", ts(hour=4), "100000")]
    assert [f.rule for f in run(licence, unnamed)] == ["valuation_unavailable"]


CAP_RULE = "{id: cap, kind: max_transaction_value, severity: breach, clause: c, max: 200000000, applies_to: [deposit]}"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "applies_to: [trade, deposit, withdrawal]",
            "applies_to: ~",
            "field 'applies_to': given without a value (null)",
        ),
        ("max: 200000000,", "max: 200000000, fees: null,", "rule 'tx-cap' (line 22): field 'fees': given without"),
        (
            'addresses: ["0x000000000000000000000000000000000000dead"]',
            'addresses: ["0x000000000000000000000000000000000000dead"], file: null',
            "field 'file': given without a value (null)",
        ),
        (
            "reference_prices: {sources: [binance], max_step: 10}",
            "reference_prices: {sources: [binance], max_step: }",
            "licence header: field 'reference_prices.max_step': given without a value (null)",
        ),
        ("retraction_sources: [ethereum]", "retraction_sources:", "field 'retraction_sources': given without a value"),
        ("retraction_sources: [ethereum]", "allowed_lateness:", "field 'allowed_lateness': given without a value"),
    ],
)
def test_a_licence_field_written_empty_is_refused_not_defaulted(old: str, new: str, expected: str) -> None:
    assert old in BASE, old
    problems = _problems(BASE.replace(old, new, 1))
    assert any(expected in problem for problem in problems), problems
