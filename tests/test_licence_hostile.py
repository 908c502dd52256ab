"""Licence files are input too: every hostile form is refused quickly, naming the rule and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandboxwatch.cli import main
from sandboxwatch.rules_engine.licence import MAX_BYTES, LicenceError, load_licence, parse_licence
from tests.helpers import DA_NANG

BASE = DA_NANG.read_text()


def _problems(text: str) -> list[str]:
    with pytest.raises(LicenceError) as caught:
        parse_licence(text, "l.yaml")
    return caught.value.problems


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("max: 200000000", "max: .inf", "rule 'tx-cap' (line 22): field 'max': must be a finite number, not '.inf'"),
        ("min_ratio: 1.0", "min_ratio: .nan", "rule 'reserves' (line 30): field 'min_ratio': must be a finite number"),
        ("min_ratio: 1.0", "min_ratio: -.inf", "rule 'reserves' (line 30): field 'min_ratio': must be a finite number"),
        ("window: 30d", "window: 99999999999999d", "rule 'month-cap' (line 23): field 'window': duration"),
        ("window: 30d", "window: 3651d", "field 'window': duration '3651d' is longer than 3650 days"),
        ("max: 10000", "max: " + "9" * 5000, "rule 'users' (line 31): field 'max': must be a whole number"),
        ("max: 200000000", "max: 1e30", "rule 'tx-cap' (line 22): field 'max': magnitude must be below 1e24"),
        # YAML 1.1 numbers that do not mean what they show: base 60 (3:20:00 is 12000), '_', hex, octal, '+'.
        ("max: 200000000", "max: 3:20:00", "(line 22): field 'max': not a plain decimal number: '3:20:00'"),
        ("max: 200000000", "max: 2_0", "rule 'tx-cap' (line 22): field 'max': not a plain decimal number: '2_0'"),
        ("max: 200000000", "max: 0x0BEBC200", "field 'max': not a plain decimal number: '0x0BEBC200'"),
        ("max: 200000000", "max: 0o17", "field 'max': not a plain decimal number: '0o17'"),
        ("max: 200000000", "max: +200000000", "field 'max': not a plain decimal number: '+200000000'"),
        ("max: 200000000", "max: '  200000000'", "field 'max': not a plain decimal number: '  200000000'"),
        ("max: 200000000", "max: 2_000.5", "field 'max': not a plain decimal number: '2_000.5'"),
        ("min_count: 3", "min_count: 1_0", "rule 'structuring' (line 25): field 'min_count': must be a whole number"),
        ("min_count: 3", "min_count: 0:3", "rule 'structuring' (line 25): field 'min_count': must be a whole number"),
        (
            "valid_from: 2025-09-01T00:00:00+07:00",
            "valid_from: 2025-02-30T00:00:00+07:00",
            "field 'valid_from': not an RFC 3339 timestamp: '2025-02-30T00:00:00+07:00' (day is out of range",
        ),
        ("valid_from: 2025-09-01T00:00:00+07:00", "valid_from: 2025-02-30", "field 'valid_from': not an RFC 3339"),
        ("valid_from: 2025-09-01T00:00:00+07:00", "valid_from: 2025-09-01", "field 'valid_from': timestamp 2025"),
        ("valid_from: 2025-09-01T00:00:00+07:00", "valid_from: 0001-01-01T00:00:00+14:00", "year 1 is outside"),
        ("reporting_currency: VND", "reporting_currency: [VND]", "field 'reporting_currency': must be text"),
        ("reporting_currency: VND", "reporting_currency: VND\n  retraction_source: [x]", "'retraction_source'"),
        ('clause: "market abuse"}', 'clause: "market abuse", 7: x}', "rule 'wash' (line 29): field '7': not a param"),
        ("rules:\n", "rule:\n  - {id: x}\nrules:\n", "the licence file: field 'rule': not a top-level field"),
        ("id: tx-cap", "id: 12", "rule #8 (line 22): field 'id': must be a name of 1 to 64 characters a-z, 0-9"),
        ("id: tx-cap", "id: " + "a" * 300, "rule #8 (line 22): field 'id': must be a name of 1 to 64 characters"),
        ("id: tx-cap", "id: Tx Cap", "rule #8 (line 22): field 'id': must be a name of 1 to 64 characters"),
        ("id: tx-cap", "id: null", "rule #8 (line 22): field 'id': missing"),
        (
            "reporting_currency: VND",
            "reporting_currency: 42",
            "licence header: field 'reporting_currency': must be a 3-letter ISO 4217 code such as VND, not 42",
        ),
        ("reporting_currency: VND", "reporting_currency: vnd", "field 'reporting_currency': must be a 3-letter"),
        ("participant: alphatrue-basal-pay", "participant: " + "p" * 201, "field 'participant': must be a name"),
        ("min_count: 3", "min_count: " + "1" + "0" * 29, "rule 'structuring' (line 25): field 'min_count': must be at"),
        ("max: 10000", "max: 1000000001", "rule 'users' (line 31): field 'max': must be at most 1,000,000,000"),
        (
            "retraction_sources: [ethereum]",
            "retraction_sources: [ethereum, 7]",
            "licence header: field 'retraction_sources': item 2 (7) is not a chain name",
        ),
        (
            "retraction_sources: [ethereum]",
            "retraction_sources: ethereum",
            "licence header: field 'retraction_sources': must be a list of chain names, not 'ethereum'",
        ),
        (
            'addresses: ["0x000000000000000000000000000000000000dead"]',
            'addresses: ["0x000000000000000000000000000000000000dead", "not an address"]',
            "rule 'blocklist' (line 27): field 'addresses': item 2 ('not an address') is not an address",
        ),
        # A value rule applied only to events that have no value would never find anything: refused.
        (
            "max: 200000000, applies_to: [trade, deposit, withdrawal]",
            "max: 200000000, applies_to: [account]",
            "rule 'tx-cap' (line 22): field 'applies_to': account events have no value, so this rule could never",
        ),
        (
            "max: 500000000, applies_to: [trade]",
            "max: 500000000, applies_to: [trade, reserve, price]",
            "rule 'month-cap' (line 23): field 'applies_to': reserve, price events have no customer account",
        ),
        (
            "threshold: 400000000, deadline: 24h",
            "threshold: 400000000, deadline: 24h, applies_to: [report]",
            "rule 'lvtr' (line 24): field 'applies_to': report events have no value",
        ),
        (  # a transfer has a value but no customer account: per-account windows never see it
            "max: 500000000, applies_to: [trade]",
            "max: 500000000, applies_to: [transfer]",
            "rule 'month-cap' (line 23): field 'applies_to': transfer events have no customer account",
        ),
        (
            "window: 24h, min_count: 3",
            "window: 24h, min_count: 3, applies_to: [participant]",
            "rule 'structuring' (line 25): field 'applies_to': participant events have no customer account",
        ),
    ],
)
def test_bad_values_name_rule_and_field(old: str, new: str, expected: str) -> None:
    assert old in BASE
    problems = _problems(BASE.replace(old, new, 1))
    assert any(expected in p for p in problems), problems


def test_alias_bomb_fails_before_expanding() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(9)
    )
    problems = _problems(bomb)  # 9**10 nodes if expanded: refused at the first anchor, on line 1
    assert "anchors and aliases" in problems[0] and "line 1, column 4" in problems[0]
    # An alias alone (no anchor in the file) is refused the same way.
    assert "anchors and aliases" in _problems(BASE.replace("sites: [DN-SP2", "sites: [*x, DN-SP2"))[0]


def test_depth_and_size_caps(tmp_path: Path) -> None:
    nested = BASE.replace("sites: [DN-SP2", "sites: [" + "[" * 20000 + "]" * 20000 + ", DN-SP2")
    assert "nested deeper than 16 levels" in _problems(nested)[0]
    big = tmp_path / "big.yaml"
    big.write_text(BASE + "#" + "x" * MAX_BYTES + "\n")
    with pytest.raises(LicenceError, match="larger than 1,048,576 bytes"):
        load_licence(big)
    assert "larger than" in _problems(BASE + "#" + "x" * MAX_BYTES)[0]


def test_bom_and_bad_encoding(tmp_path: Path) -> None:
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    assert load_licence(bom).id == "DN-136-PILOT-01"
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(BASE.replace("Da Nang", "\xd0\xe0 N\xe3ng").encode("latin-1"))
    with pytest.raises(LicenceError, match="not UTF-8 text"):
        load_licence(latin)


def test_validate_and_check_exit_two_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE.replace("min_ratio: 1.0", "min_ratio: .nan"))
    events = tmp_path / "e.jsonl"
    events.write_text("{}\n")
    assert main(["licence", "validate", str(bad)]) == 2
    assert main(["check", "--licence", str(bad), "--events", str(events)]) == 2
    err = capsys.readouterr().err
    assert err.count("rule 'reserves' (line 30): field 'min_ratio': must be a finite number") == 2
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # A second `rules:` would replace every rule the regulator wrote before it.
        (
            "rules:\n",
            "rules:\n  - {id: period, kind: licence_period, severity: info, clause: x}\nrules:\n",
            "the licence file: field 'rules': given twice (line 14 and line 16)",
        ),
        # A repeated `max` would raise the cap to the later value.
        (
            "max: 10000}",
            "max: 10000, max: 99999}",
            "rule 'users' (line 31): field 'max': given twice (line 31 and line 31)",
        ),
        (
            "reporting_currency: VND\n",
            "reporting_currency: VND\n  valid_until: 2099-01-01T00:00:00+07:00\n",
            "licence header (line 5): field 'valid_until': given twice (line 10 and line 12)",
        ),
    ],
)
def test_duplicate_keys_are_refused_naming_the_key_and_its_lines(old: str, new: str, expected: str) -> None:
    assert old in BASE
    problems = _problems(BASE.replace(old, new, 1))
    assert problems == [
        expected + "; a licence must say each thing once (YAML would silently keep only the last value)"
    ], problems


def _blocklist_licence(tmp_path: Path, file: str) -> Path:
    licence = tmp_path / "lic.yaml"
    licence.write_text(BASE.replace('addresses: ["0x000000000000000000000000000000000000dead"]', f"file: '{file}'"))
    return licence


def _file_problem(licence: Path) -> str:
    with pytest.raises(LicenceError) as caught:
        load_licence(licence)
    [problem] = caught.value.problems
    assert problem.startswith("rule 'blocklist' (line 27): field 'file': "), problem
    return problem


def test_address_file_must_be_a_regular_bounded_address_list(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from sandboxwatch.rules_engine.reference_lists import MAX_LIST_BYTES

    assert "is not a regular file" in _file_problem(_blocklist_licence(tmp_path, "/dev/zero"))
    assert "is not a regular file" in _file_problem(_blocklist_licence(tmp_path, "."))
    problem = _file_problem(_blocklist_licence(tmp_path, "/etc/passwd"))
    assert "address list /etc/passwd, line 1: not an address (3 to 128" in problem
    assert "root" not in problem  # the file's content is never echoed
    big = tmp_path / "big.txt"
    with big.open("wb") as out:  # sparse: the size is checked before anything is read
        out.truncate(MAX_LIST_BYTES + 1)
    assert f"is larger than {MAX_LIST_BYTES:,} bytes" in _file_problem(_blocklist_licence(tmp_path, "big.txt"))
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"0xabc1\n\xff\xfe\n")
    assert "bin.txt, line 2: not UTF-8 text" in _file_problem(_blocklist_licence(tmp_path, "bin.txt"))
    # A FIFO is refused at once rather than blocking the load forever (in a child, so a hang fails the test).
    os.mkfifo(tmp_path / "fifo")
    code = (
        "from sandboxwatch.rules_engine.licence import load_licence, LicenceError\n"
        f"try:\n    load_licence({str(_blocklist_licence(tmp_path, 'fifo'))!r})\n"
        "except LicenceError as exc:\n    print(exc.problems[0])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "fifo is not a regular file" in done.stdout


def test_address_file_is_found_next_to_the_licence_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "list.txt").write_text(
        "# published: 2025-10-01\n0xAbC1  # ETH\r\n\nTN4J2Q5Hk9a3HLuH2hiN6mDrB1CmUyd1Zs\n"
    )
    _blocklist_licence(tmp_path, "list.txt")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    [listed] = load_licence("../lic.yaml").rule("blocklist").params.lists
    assert listed.addresses == {"0xabc1", "tn4j2q5hk9a3hluh2hin6mdrb1cmuyd1zs"}
    assert listed.version == "list.txt of 2025-10-01"


def test_hot_reload_refuses_a_file_that_is_no_longer_an_address_list(tmp_path: Path) -> None:
    import os

    from sandboxwatch.rules_engine.reference_lists import ReferenceError, changed

    listed_file = tmp_path / "list.txt"
    listed_file.write_text("# published: 2025-10-01\n0xabc1\n")
    [current] = load_licence(_blocklist_licence(tmp_path, "list.txt")).rule("blocklist").params.lists
    listed_file.write_text("0xabc1\n<html>Not found</html>\n")
    with pytest.raises(ReferenceError, match=r"list.txt, line 2: not an address .*"
                       r"keeping list.txt of 2025-10-01"):  # fmt: skip
        changed(current)
    listed_file.unlink()
    os.mkfifo(listed_file)
    with pytest.raises(ReferenceError, match=r"is not a regular file.*; keeping list\.txt of 2025-10-01"):
        changed(current)
