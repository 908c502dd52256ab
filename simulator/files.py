"""A simulated day as files: the events as JSON Lines and the ground truth of its injected violations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sandboxwatch.rules_engine.licence import Licence
from sandboxwatch.simulator.day_builder import Scenario, SimulationConfig
from sandboxwatch.simulator.scenario import build_scenario


def scenario_lines(scenario: Scenario) -> Iterator[str]:
    for row in scenario.rows:
        yield json.dumps({k: v for k, v in row.items() if k != "_ts"}, separators=(",", ":")) + "\n"


def truth_document(licence: Licence, scenario: Scenario) -> dict[str, Any]:
    return {
        "licence": licence.id,
        "participant": licence.participant,
        "start": scenario.start.isoformat(),
        "end": scenario.end.isoformat(),
        "events": len(scenario.rows),
        "violations": [
            {"rules": v.rules, "what": v.what, "evidence": v.evidence, "subject": v.subject}
            for v in scenario.violations
        ],
        "injected_events": sorted(scenario.injected),
        "not_injected": scenario.not_injected,
    }


def simulate_to_files(licence: Licence, config: SimulationConfig, out: Path, truth: Path | None) -> str:
    scenario = build_scenario(licence, config)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        handle.writelines(scenario_lines(scenario))
    if truth is not None:
        truth.write_text(json.dumps(truth_document(licence, scenario), indent=2) + "\n", encoding="utf-8")
    return (
        f"wrote {len(scenario.rows)} events ({scenario.start.isoformat()} to {scenario.end.isoformat()}) "
        f"to {out}, with {len(scenario.violations)} injected violations"
        + (f" ({len(scenario.injected)} of the events)" if config.target_events else "")
        + "".join(f"; not injected: {note}" for note in scenario.not_injected)
        + (f"; ground truth in {truth}" if truth else "")
    )
