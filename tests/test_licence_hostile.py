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
