"""The tamper-evident findings trail over a real (embedded) ClickHouse: every kind of tampering is caught."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sandboxwatch.rules_engine.event_reader import read_jsonl
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.rules_engine.self_check import run_check
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
from sandboxwatch.store.clickhouse_store import Store, recorded_now
from sandboxwatch.store.finding_trail import (
    GENESIS,
    NOT_CHAINED,
    TRAIL_COLUMNS,
    FindingTrail,
    entry_hash,
    finding_digest,
)
from sandboxwatch.store.records import FINDING_COLUMNS, finding_row
from tests.helpers import DA_NANG

pytest.importorskip("chdb")


@pytest.fixture(scope="module")
def findings() -> list[Finding]:
    scenario = build_scenario(load_licence(DA_NANG), SimulationConfig(accounts=80, seed=9))
    result = run_check(load_licence(DA_NANG), read_jsonl(scenario_lines(scenario), "day"))
    assert len(result.findings) > 10
    return result.findings


def problems(store: Store, **kwargs: object) -> list[str]:
    """What verify reports at once: these tests tamper, no write is in progress to wait for (the settle
    wait has tests of its own below)."""
    store.trail.settle = 0.0
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


def test_a_consistently_rewritten_chain_misses_the_recorded_and_the_published_heads(
    store: Store, findings: list[Finding]
) -> None:
    store.write_findings(findings)
    heads = store.trail.heads()
    # Someone with write access drops a finding and rebuilds the whole chain so that it links up again.
    dropped = findings[1]
    mutate(store, f"ALTER TABLE {store.db}.findings DELETE WHERE finding_id = '{dropped.finding_id}'")
    mutate(store, f"ALTER TABLE {store.db}.finding_trail DELETE WHERE 1")
    store.write_findings([f for f in findings if f is not dropped])
    assert any("recorded a head at seq" in p for p in problems(store))  # the heads the monitor recorded
    # ... and when the recorded heads are wiped as well, only heads archived outside the database tell.
    mutate(store, f"ALTER TABLE {store.db}.finding_trail_heads DELETE WHERE 1")
    store.write_findings([f for f in findings if f is not dropped])
    assert problems(store) == []
    assert any("published chain head" in p for p in problems(store, expected=heads))


def stored_row(store: Store, finding_id: str) -> dict[str, Any]:
    columns = ", ".join(FINDING_COLUMNS)
    (row,) = store.backend.rows(f"SELECT {columns} FROM {store.db}.findings WHERE finding_id = '{finding_id}'")
    values = dict(zip(FINDING_COLUMNS, row, strict=True))
    for name in ("ts", "recorded"):  # as a writer with table access would send them back
        values[name] = datetime.strptime(str(values[name]), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return values


def rewrite(store: Store, target: str, changes: dict[str, Any]) -> None:
    """Replace a stored finding by an edited copy: how any column, keys and partition key included, is changed."""
    values = stored_row(store, target)
    values.update(changes)
    mutate(store, f"ALTER TABLE {store.db}.findings DELETE WHERE finding_id = '{target}'")
    store.backend.insert("findings", FINDING_COLUMNS, [tuple(values[c] for c in FINDING_COLUMNS)])


def edited(values: dict[str, Any], column: str) -> Any:
    value = values[column]
    if column in ("ts", "recorded"):
        return value + timedelta(days=365 * 5)  # the 2030 move from issue 13
    if column == "evidence":
        return [*value, "an-extra-event"]
    if column in ("observed", "limit_value"):
        return "1" if value is None else str(value) + "0"
    return str(value) + "x"


@pytest.mark.parametrize("column", FINDING_COLUMNS)
def test_altering_any_stored_column_of_a_finding_is_detected(
    store: Store, findings: list[Finding], column: str
) -> None:
    store.write_findings(findings)
    assert problems(store) == []
    target = next(f for f in findings if f.observed is not None)
    rewrite(store, target.finding_id, {column: edited(stored_row(store, target.finding_id), column)})
    found = problems(store)
    assert found, f"altering {column} went unnoticed"
    if column in ("finding_id", "participant"):  # the chained finding is gone from where it was chained
        assert any(f"finding {target.finding_id}: chained finding is missing" in p for p in found)
        assert any("not in the trail" in p for p in found)
    else:
        assert found == [
            f"{target.participant} seq {_seq(store, target)} finding {target.finding_id}: "
            "finding differs from what was chained (altered)"
        ]


def _seq(store: Store, finding: Finding) -> int:
    rows = store.backend.rows(f"SELECT seq FROM {store.db}.finding_trail WHERE finding_id = '{finding.finding_id}'")
    return int(rows[0][0])


def test_a_truncated_tail_is_caught_without_published_heads(store: Store, findings: list[Finding]) -> None:
    store.write_findings(findings[:10])
    store.write_findings(findings)
    participant = findings[0].participant
    top = store.trail.heads()[participant].seq
    cut = store.backend.rows(f"SELECT finding_id FROM {store.db}.finding_trail WHERE seq > {top - 3}")
    ids = "', '".join(str(r[0]) for r in cut)
    mutate(store, f"ALTER TABLE {store.db}.finding_trail DELETE WHERE seq > {top - 3}")
    mutate(store, f"ALTER TABLE {store.db}.findings DELETE WHERE finding_id IN ('{ids}')")
    assert problems(store) == [
        f"{participant} seq {top}: the trail ends at seq {top - 3} but the monitor recorded a head at seq {top} "
        "(newest entries removed)"
    ]
    # Heads recorded for earlier batches still bind the part of the chain that is left.
    mutate(store, f"ALTER TABLE {store.db}.finding_trail_heads DELETE WHERE seq > {top - 3}")
    assert problems(store) == []  # the limit: TAIL_NOTE, which the CLI and API print without --heads


def test_entries_written_under_digest_version_1_still_verify_and_the_chain_continues(
    store: Store, findings: list[Finding]
) -> None:
    old, new = findings[:5], findings[5:]
    store.backend.insert("findings", FINDING_COLUMNS, [finding_row(f, findings[0].ts) for f in old])  # type: ignore[arg-type]
    prev = GENESIS
    rows = []
    for seq, finding in enumerate(sorted(old, key=lambda f: (f.ts.isoformat() if f.ts else "", f.finding_id)), 1):
        values = stored_row(store, finding.finding_id)
        values["evidence"] = [str(e) for e in values["evidence"]]
        digest = finding_digest(values, version=1)
        link = entry_hash(prev, seq, finding.finding_id, digest, version=1)
        rows.append((finding.participant, seq, finding.finding_id, digest, prev, link, findings[0].ts))
        prev = link
    # As the version 3 schema wrote them: no digest_version column given, so it defaults to 1.
    store.backend.insert("finding_trail", TRAIL_COLUMNS[:-1], rows)
    store.write_findings(new)
    assert problems(store) == []
    versions = store.backend.rows(f"SELECT digest_version, count() FROM {store.db}.finding_trail GROUP BY 1 ORDER BY 1")
    assert [(int(v), int(n)) for v, n in versions] == [(1, 5), (2, len(new))]
    # Version 1 did not cover recorded; version 2 entries do, and cannot be downgraded to version 1.
    mutate(store, f"ALTER TABLE {store.db}.finding_trail UPDATE digest_version = 1 WHERE seq = 6")
    assert any("seq 6" in p and "entry hash does not match" in p for p in problems(store))


class _LaggingReads:
    """A replica that has not fetched the newest part yet: reads of ``findings`` see none of them for a while."""

    def __init__(self, backend: Any, hidden_reads: int) -> None:
        self._backend = backend
        self.hidden_reads = hidden_reads

    def rows(self, sql: str) -> list[Any]:
        if "FROM" in sql and ".findings WHERE" in sql and self.hidden_reads > 0:
            self.hidden_reads -= 1
            return []
        return list(self._backend.rows(sql))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def test_a_finding_read_back_late_is_still_chained(store: Store, findings: list[Finding]) -> None:
    lagging = _LaggingReads(store.backend, hidden_reads=2)
    store.trail.backend = lagging
    assert {f.finding_id for f in store.write_findings(findings[:3])} == {f.finding_id for f in findings[:3]}
    assert lagging.hidden_reads == 0
    assert problems(store) == []


def test_a_finding_never_read_back_fails_the_write_and_the_retry_still_reports_it_new(
    store: Store, findings: list[Finding]
) -> None:
    """Skipping it would leave a stored finding unchained for good (the batch's offsets get committed);
    and a retry that found it stored must still report it new, or it would never be counted or alerted."""
    from sandboxwatch.store.backends import StoreError

    lagging = _LaggingReads(store.backend, hidden_reads=1000)
    store.trail.backend = lagging
    batch = findings[3:5]
    with pytest.raises(StoreError, match="not readable yet"):
        store.write_findings(batch)
    lagging.hidden_reads = 0
    assert [f.finding_id for f in store.write_findings(batch)] == [f.finding_id for f in batch]
    assert store.write_findings(batch) == []
    assert problems(store) == []


def _stored_unchained(store: Store, batch: list[Finding]) -> datetime:
    """The first of a write's three inserts (findings, trail entries, heads), as a reader can catch it."""
    now = recorded_now()
    store.backend.insert("findings", FINDING_COLUMNS, [finding_row(f, now) for f in batch])
    return now


def test_a_verify_landing_inside_a_write_waits_for_its_trail_instead_of_crying_tampering(
    store: Store, findings: list[Finding], monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write_findings(findings[:4])
    batch = findings[4:7]
    now = _stored_unchained(store, batch)
    waits: list[float] = []

    def the_writer_goes_on(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            store.trail.append(batch, now)  # the same write's trail and heads inserts land meanwhile

    monkeypatch.setattr(time, "sleep", the_writer_goes_on)  # the module verify waits with
    assert store.trail.verify() == []
    assert len(waits) == 2, "it waited for the write, then stopped"


def test_a_finding_that_stays_unchained_is_reported_once_the_settle_time_is_over(
    store: Store, findings: list[Finding]
) -> None:
    store.write_findings(findings[:4])
    _stored_unchained(store, findings[4:5])
    store.trail.settle = 0.6
    started = time.monotonic()
    found = store.trail.verify()
    assert time.monotonic() - started >= 0.6
    assert [(p.finding_id, p.what) for p in found] == [(findings[4].finding_id, NOT_CHAINED)]


class _WriteLandsAfterFirstRead:
    """A backend on which a pending write (trail entries, then heads) completes right after the first read."""

    def __init__(self, backend: Any, write: Any) -> None:
        self._backend = backend
        self._write = write

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        result: list[tuple[Any, ...]] = self._backend.rows(sql)
        write, self._write = self._write, None
        if write is not None:
            write()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def test_verify_reads_in_the_reverse_order_of_the_writes(store: Store, findings: list[Finding]) -> None:
    """Heads, then the trail, then the findings: a write finishing between two of those reads can only add
    what the later reads see consistently. Read the other way round, the new head would look like a trail
    whose newest entries were removed (which no settle wait re-checks on one server)."""
    store.write_findings(findings[:4])
    batch = findings[4:7]
    now = _stored_unchained(store, batch)
    racing = _WriteLandsAfterFirstRead(store.backend, lambda: store.trail.append(batch, now))
    assert FindingTrail(racing, store.db, settle=0.0).verify() == []
    assert problems(store) == []
