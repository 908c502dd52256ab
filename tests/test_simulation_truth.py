"""The simulated day's ground truth: every injected violation is found, and nothing else is."""

from __future__ import annotations

import pytest

from sandboxwatch.rules_engine.event_reader import read_jsonl
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.licence import Licence, load_licence
from sandboxwatch.rules_engine.rules import RULE_KINDS
from sandboxwatch.rules_engine.self_check import run_check
from sandboxwatch.simulator import SimulationConfig, Violation, build_scenario, scenario_lines
from tests.helpers import NATIONAL, da_nang


def _explains(violation: Violation, finding: Finding) -> bool:
    if finding.rule not in violation.rules:
        return False
    if violation.evidence:
        return bool(set(violation.evidence) & set(finding.evidence))
    return finding.subject == violation.subject


def _check(licence: Licence, config: SimulationConfig) -> tuple[list[Violation], list[Finding]]:
    scenario = build_scenario(licence, config)
    result = run_check(licence, read_jsonl(scenario_lines(scenario), "sim"))
    assert not result.errors
    assert result.stats.duplicates > 0 or config.duplicate_rate == 0
    return scenario.violations, result.findings


@pytest.mark.parametrize("load", [da_nang, lambda: load_licence(NATIONAL)], ids=["da-nang", "national"])
def test_every_injected_violation_is_found_and_nothing_else(load) -> None:
    licence = load()
    violations, findings = _check(licence, SimulationConfig(accounts=400, seed=7, duplicate_rate=0.01))
    kinds = {rule.kind for rule in licence.rules}
    covered = {licence.rule(rule_id).kind for v in violations for rule_id in v.rules}
    assert covered == kinds, f"kinds without an injected violation: {kinds - covered}"
    for violation in violations:
        for rule_id in violation.rules:
            assert any(f.rule == rule_id and _explains(violation, f) for f in findings), (
                f"{violation.what}: no {rule_id} finding"
            )
    unexplained = [f for f in findings if not any(_explains(v, f) for v in violations)]
    assert unexplained == []


def test_clean_day_has_no_findings() -> None:
    licence = da_nang()
    violations, findings = _check(licence, SimulationConfig(accounts=300, seed=3, violations=False))
    assert violations == []
    assert findings == []


def test_simulation_is_deterministic() -> None:
    licence = da_nang()
    config = SimulationConfig(accounts=50, seed=11)
    first = list(scenario_lines(build_scenario(licence, config)))
    assert first == list(scenario_lines(build_scenario(licence, config)))


def test_every_rule_kind_injects_its_violation() -> None:
    assert [name for name, kind in RULE_KINDS.items() if kind.inject is None] == []


@pytest.mark.parametrize("target", [300, 3000, 12_345, 30_000])
def test_events_asks_for_exactly_that_many_events_and_the_truth_stays_right(target: int) -> None:
    """``--events N`` writes N events, injected violations included; one that cannot fit in N (the customer
    cap needs as many sign-ups as the cap) is left out and named, never claimed by the truth."""
    licence = da_nang()
    config = SimulationConfig(accounts=3000, seed=5, target_events=target)
    scenario = build_scenario(licence, config)
    assert len(scenario.rows) == target
    assert (scenario.not_injected != []) == (target < 20_000)
    violations, findings = _check(licence, config)
    for violation in violations:
        for rule_id in violation.rules:
            assert any(f.rule == rule_id and _explains(violation, f) for f in findings), violation.what
    assert [f for f in findings if not any(_explains(v, f) for v in violations)] == []
    covered = {licence.rule(rule_id).kind for v in violations for rule_id in v.rules}
    left_out = {note.split()[0] for note in scenario.not_injected}
    assert covered | left_out == {rule.kind for rule in licence.rules}


def test_events_below_what_the_day_needs_is_refused_with_the_minimum() -> None:
    from sandboxwatch.simulator import SimulationTooSmall

    with pytest.raises(
        SimulationTooSmall, match=r"--events 100 is fewer than this licence's day needs: at least (\d+) "
    ):
        build_scenario(da_nang(), SimulationConfig(target_events=100))
    try:
        build_scenario(da_nang(), SimulationConfig(target_events=100))
    except SimulationTooSmall as exc:
        minimum = int(str(exc).split("at least ")[1].split()[0].replace(",", ""))
    assert len(build_scenario(da_nang(), SimulationConfig(target_events=minimum)).rows) == minimum
    with pytest.raises(SimulationTooSmall):
        build_scenario(da_nang(), SimulationConfig(target_events=minimum - 1))
