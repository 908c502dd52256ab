"""The stream monitor over the embedded store (chdb) agrees with ``check`` and the oracle on streams whose
arrival order is shuffled within the allowed lateness and cut into batches at random points."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandboxwatch.rules_engine.event_parser import event_from_dict
from sandboxwatch.rules_engine.event_reader import read_jsonl
from sandboxwatch.rules_engine.self_check import run_check
from sandboxwatch.store.backends import EmbeddedBackend
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.streams.inbound import InboundMessage
from sandboxwatch.streams.monitor import Monitor
from tests.oracle.reference import expected_findings, judged_order
from tests.oracle.streams import licence, streams
from tests.oracle.test_engine_vs_oracle import _arrivals

pytest.importorskip("chdb")

LICENCE = licence()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    streams(max_events=30),
    st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=30),
    st.integers(min_value=1, max_value=7),
)
def test_monitor_check_and_oracle_agree_on_a_stream_shuffled_within_lateness(
    backend: EmbeddedBackend, rows: list[dict[str, Any]], delays: list[int], batch: int
) -> None:
    backend.database = "o" + uuid.uuid4().hex[:12]
    store = Store(backend)
    store.migrate()
    arrived = _arrivals(rows, delays)
    lines = [json.dumps(row) for row in arrived]
    monitor = Monitor([LICENCE], store)
    messages = [InboundMessage("events", 0, i, b"p1", line.encode()) for i, line in enumerate(lines)]
    for start in range(0, len(messages), batch):
        monitor.process_batch(messages[start : start + batch])
    monitor.flush()
    oracle = {e.finding_id for e in expected_findings(LICENCE, judged_order([event_from_dict(r) for r in arrived]))}
    checked = {f.finding_id for f in run_check(LICENCE, read_jsonl(lines, "oracle")).findings}
    assert set(store.finding_ids()) == checked == oracle
    assert store.count("dead_letters") == 0


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    streams(max_events=30),
    st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=30),
    st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=30),
    st.integers(min_value=1, max_value=4),
)
def test_batch_messages_cut_at_random_points_agree_with_check_and_the_oracle(
    backend: EmbeddedBackend, rows: list[dict[str, Any]], delays: list[int], cuts: list[int], take: int
) -> None:
    """The same shuffled streams as JSON Lines batch messages of random sizes (docs/events.md), taken a few
    messages at a time: every line is judged as if it had come alone."""
    backend.database = "o" + uuid.uuid4().hex[:12]
    store = Store(backend)
    store.migrate()
    arrived = _arrivals(rows, delays)
    lines = [json.dumps(row) for row in arrived]
    messages: list[InboundMessage] = []
    start = 0
    while start < len(lines):
        size = cuts[len(messages) % len(cuts)]
        value = "\n".join(lines[start : start + size]).encode()
        messages.append(InboundMessage("events", 0, len(messages), b"p1", value))
        start += size
    monitor = Monitor([LICENCE], store)
    for first in range(0, len(messages), take):
        monitor.process_batch(messages[first : first + take])
    monitor.flush()
    oracle = {e.finding_id for e in expected_findings(LICENCE, judged_order([event_from_dict(r) for r in arrived]))}
    checked = {f.finding_id for f in run_check(LICENCE, read_jsonl(lines, "oracle")).findings}
    assert set(store.finding_ids()) == checked == oracle
    assert store.count("dead_letters") == 0


def test_a_quiet_participant_is_flushed_only_after_its_quiet_spell(store: Store) -> None:
    monitor = Monitor([LICENCE], store)
    row = {"event_id": "r1", "type": "reserve", "participant": "p1", "ts": "2025-10-02T10:00:00+07:00",
           "asset": "USDT", "custody_balance": "99", "client_liabilities": "100"}  # fmt: skip
    outcome = monitor.process_batch([InboundMessage("events", 0, 0, b"p1", json.dumps(row).encode())])
    assert outcome.findings == [] and monitor.engines["p1"].buffered == 1  # held for lateness
    assert monitor.flush(quiet_seconds=3600).findings == []  # it has not been quiet that long
    flushed = monitor.flush(quiet_seconds=0)
    assert [(f.rule, f.evidence) for f in flushed.findings] == [("res", ("r1",))]
    assert [f.finding_id for f in flushed.new_findings] == store.finding_ids()
