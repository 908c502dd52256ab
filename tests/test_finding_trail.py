"""The tamper-evident findings trail over a real (embedded) ClickHouse: every kind of tampering is caught."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rules_engine.event_reader import read_jsonl
from rules_engine.findings import Finding
from rules_engine.licence import load_licence
from sandboxwatch.self_check import run_check
from sandboxwatch.simulate import SimulationConfig, build_scenario, scenario_lines
from store.clickhouse_store import Store
from store.finding_trail import GENESIS
from store.records import FINDING_COLUMNS, finding_row
from tests.helpers import DA_NANG

pytest.importorskip("chdb")


@pytest.fixture(scope="module")
def findings() -> list[Finding]:
    scenario = build_scenario(load_licence(DA_NANG), SimulationConfig(accounts=80, seed=9))
    result = run_check(load_licence(DA_NANG), read_jsonl(scenario_lines(scenario), "day"))
    assert len(result.findings) > 10
    return result.findings


def problems(store: Store, **kwargs: object) -> list[str]:
    return [p.describe() for p in store.trail.verify(**kwargs)]  # type: ignore[arg-type]


def mutate(store: Store, sql: str) -> None:
    store.backend.command(f"{sql} SETTINGS mutations_sync = 2")


def test_intact_trail_verifies_and_replays_do_not_extend_it(store: Store, findings: list[Finding]) -> None:
    store.write_findings(findings[:7])
    store.write_findings(findings)  # a replayed batch overlapping the first
    store.write_findings(findings)
    assert problems(store) == []
    assert store.raw_count("findings") == len(findings)
    rows = store.backend.rows(f"SELECT count(), max(seq) FROM {store.db}.finding_trail")
    assert (int(rows[0][0]), int(rows[0][1])) == (len(findings), len(findings))
    first = store.backend.rows(f"SELECT prev_hash FROM {store.db}.finding_trail WHERE seq = 1")
    assert first[0][0] == GENESIS


def test_a_finding_stored_but_not_chained_before_a_crash_is_chained_on_replay(
    store: Store, findings: list[Finding]
) -> None:
    store.backend.insert("findings", FINDING_COLUMNS, [finding_row(findings[0], findings[0].ts)])  # type: ignore[arg-type]
    assert any("not in the trail" in p for p in problems(store))
    store.write_findings(findings[:3])
    assert problems(store) == []


def test_altered_finding_is_detected(store: Store, findings: list[Finding]) -> None:
    store.write_findings(findings)
    target = findings[4]
    mutate(
        store,
        f"ALTER TABLE {store.db}.findings UPDATE message = 'nothing to see' WHERE finding_id = '{target.finding_id}'",
    )
    (only,) = problems(store)
    assert only.startswith(target.participant) and only.endswith(
        f"finding {target.finding_id}: finding differs from what was chained (altered)"
    )


def test_second_version_of_a_finding_is_detected(store: Store, findings: list[Finding]) -> None:
    store.write_findings(findings)
    softer = replace(findings[2], severity="info")
    store.backend.insert("findings", FINDING_COLUMNS, [finding_row(softer, findings[2].ts)])  # type: ignore[arg-type]
    assert any("altered" in p and findings[2].finding_id in p for p in problems(store))


def test_removed_finding_is_detected(store: Store, findings: list[Finding]) -> None:
    store.write_findings(findings)
    target = findings[6]
    mutate(store, f"ALTER TABLE {store.db}.findings DELETE WHERE finding_id = '{target.finding_id}'")
    assert any("missing from the findings table" in p and target.finding_id in p for p in problems(store))


def test_removed_trail_row_is_detected(store: Store, findings: list[Finding]) -> None:
    store.write_findings(findings)
    mutate(store, f"ALTER TABLE {store.db}.finding_trail DELETE WHERE seq = 3")
    found = problems(store)
    assert any("seq 3: trail entry missing" in p for p in found)
    assert any("not in the trail" in p for p in found)


def test_reordered_rows_are_detected(store: Store, findings: list[Finding]) -> None:
    store.write_findings(findings)
    columns = "participant, seq, finding_id, finding_digest, prev_hash, entry_hash, recorded"
    rows = store.backend.rows(f"SELECT {columns} FROM {store.db}.finding_trail WHERE seq IN (2, 3) ORDER BY seq")
    mutate(store, f"ALTER TABLE {store.db}.finding_trail DELETE WHERE seq IN (2, 3)")
    swapped = [(r[0], 5 - int(r[1]), *r[2:6], findings[0].ts) for r in rows]  # entry 2 becomes 3 and back
    store.backend.insert("finding_trail", columns.split(", "), swapped)
    found = problems(store)
    assert any("seq 2" in p and "does not follow the previous entry" in p for p in found)
    assert any("seq 3" in p for p in found)


def test_a_consistently_rewritten_chain_misses_the_published_head(store: Store, findings: list[Finding]) -> None:
    store.write_findings(findings)
    heads = store.trail.heads()
    # Someone with write access drops a finding and rebuilds the whole chain so that it links up again.
    dropped = findings[1]
    mutate(store, f"ALTER TABLE {store.db}.findings DELETE WHERE finding_id = '{dropped.finding_id}'")
    mutate(store, f"ALTER TABLE {store.db}.finding_trail DELETE WHERE 1")
    store.write_findings([f for f in findings if f is not dropped])
    assert problems(store) == []  # internally consistent ...
    assert any("published chain head" in p for p in problems(store, expected=heads))  # ... but not the same
