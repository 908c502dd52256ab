"""Licence files are rejected as a whole, with the rule, the field and the line named."""

from __future__ import annotations

import pytest

from sandboxwatch.rules_engine.licence import LicenceError, load_licence, parse_licence
from sandboxwatch.rules_engine.rules import RULE_KINDS
from tests.helpers import DA_NANG, HEADER, NATIONAL, ROOT, licence_with


def test_example_licences_load() -> None:
    da_nang = load_licence(DA_NANG)
    assert da_nang.id == "DN-136-PILOT-01" and len(da_nang.rules) == 18
    national = load_licence(NATIONAL)
    assert national.header.valid_from.isoformat() == "2025-09-09T00:00:00+07:00"
    assert national.header.valid_until.year == 2030
    assert national.rule("capital").params.max_foreign_ownership_pct == 49


def test_the_registry_is_the_contracts_kinds_and_the_rule_modules() -> None:
    """docs/licence.md's table of rule kinds, the registry and rules_engine/rules/ name the same kinds."""
    table = (ROOT / "docs" / "licence.md").read_text(encoding="utf-8").split("## Rule kinds", 1)[1].split("\n## ", 1)[0]
    documented = {line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")} - {"kind"}
    modules = {p.stem for p in (ROOT / "rules_engine" / "rules").glob("*.py")} - {"__init__", "base"}
    assert set(RULE_KINDS) == documented == modules


def _problems(*rules: str) -> list[str]:
    with pytest.raises(LicenceError) as info:
        licence_with(*rules)
    return info.value.problems


def test_unknown_kind_names_rule_field_and_line() -> None:
    (problem,) = _problems("{id: x, kind: nonsense, severity: breach, clause: c}")
    assert "rule 'x' (line 11)" in problem and "field 'kind'" in problem


def test_missing_parameter() -> None:
    (problem,) = _problems("{id: cap, kind: max_transaction_value, severity: breach, clause: c}")
    assert "rule 'cap'" in problem and "field 'max': missing parameter" in problem


@pytest.mark.parametrize("duration", ["24", "1w", "-5h", "0h", "1.5h"])
def test_bad_duration(duration: str) -> None:
    (problem,) = _problems(
        f"{{id: v, kind: rolling_volume, severity: breach, clause: c, window: '{duration}', max: 1}}"
    )
    assert "field 'window'" in problem and "duration" in problem


def test_duplicate_id() -> None:
    rule = "{id: wash, kind: self_trade, severity: breach, clause: c}"
    (problem,) = _problems(rule, rule)
    assert problem == "rule 'wash' (line 12): field 'id': duplicate of line 11"


def test_misspelt_parameter_and_bad_severity_are_rejected() -> None:
    problems = _problems(
        "{id: cap, kind: max_transaction_value, severity: breach, clause: c, max: 5, maxx: 6}",
        "{id: wash, kind: self_trade, severity: fatal, clause: c}",
    )
    assert any("field 'maxx': not a parameter" in p for p in problems)
    assert any("field 'severity'" in p for p in problems)


def test_money_rejects_garbage_and_keeps_yaml_decimals_exact() -> None:
    (problem,) = _problems("{id: cap, kind: max_transaction_value, severity: breach, clause: c, max: lots}")
    assert "field 'max'" in problem
    lic = licence_with("{id: r, kind: reserve_coverage, severity: breach, clause: c, min_ratio: 1.1}")
    assert str(lic.rules[0].params.min_ratio) == "1.1"


def test_header_problems() -> None:
    with pytest.raises(LicenceError) as info:
        parse_licence(HEADER.replace("2025-09-01T00:00:00+07:00", "2025-09-01T00:00:00") + "  - {}\n")
    assert "valid_from" in str(info.value) and "offset" in str(info.value)
    with pytest.raises(LicenceError):
        parse_licence("licence: {id: x}\nrules: []\n")
    with pytest.raises(LicenceError):
        parse_licence(":::: not yaml [")


def test_fingerprint_follows_the_terms_not_the_objects() -> None:
    import pickle

    first, second = load_licence(DA_NANG), load_licence(DA_NANG)
    assert first.fingerprint() == second.fingerprint() == pickle.loads(pickle.dumps(first)).fingerprint()
    changed = DA_NANG.read_text().replace("max: 10000", "max: 12000")
    assert parse_licence(changed, "changed.yaml").fingerprint() != first.fingerprint()
