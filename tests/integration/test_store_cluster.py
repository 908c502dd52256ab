"""The store's cluster mode on a real cluster: two Debian clickhouse-server 18.16 replicas of one shard,
coordinated by Debian's ZooKeeper, all started here on 127.0.0.1.

The monitor writes a simulated day through the Distributed tables while the replica it is connected to is
stopped and later restarted: nothing may be lost or doubled on either replica, the findings must be the
self-check's, the trail must verify, and the restarted replica must catch up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver import Client

from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.simulator import SimulationConfig, simulate_to_files
from sandboxwatch.store.backends import StoreError, connect
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.schema import MIGRATIONS
from sandboxwatch.store.worker_leases import LeaseBeat
from sandboxwatch.streams.inbound import InboundMessage
from sandboxwatch.streams.monitor import Monitor
from sandboxwatch.streams.publish import publish_lines
from tests.helpers import DA_NANG, ROOT
from tests.integration.pipeline import Pipeline
from tests.local_services import ClickHouseReplicas, ClickHouseServer, ServiceError, TansuBroker

BATCH = 400
TABLES = (
    "events", "findings", "dead_letters", "licence_versions", "schema_migrations", "alert_notifications",
    "finding_trail", "access_denials", "finding_notes", "finding_trail_heads", "case_transitions", "case_trail_heads",
    "worker_leases",
)  # fmt: skip


@pytest.fixture(scope="module")
def replicas() -> Iterator[ClickHouseReplicas]:
    cluster = ClickHouseReplicas(replicas=2, cluster="sw")
    try:
        cluster.start()
    except ServiceError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("day")
    events = folder / "day.jsonl"
    simulate_to_files(load_licence(DA_NANG), SimulationConfig(accounts=120, seed=4), events, None)
    return events, events.read_text().splitlines()


def self_check(path: Path) -> dict[str, tuple[str, str, str, str]]:
    """``sandboxwatch check`` on the same file: finding id -> (participant, rule, kind, severity)."""
    result = subprocess.run(
        [sys.executable, "-m", "sandboxwatch.cli", "check", "--licence", str(DA_NANG), "--events", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode in (0, 1), result.stderr
    found = [json.loads(line) for line in result.stdout.splitlines()]
    return {f["finding_id"]: (f["participant"], f["rule"], f["kind"], f["severity"]) for f in found}


def messages(lines: list[str]) -> list[InboundMessage]:
    return [
        InboundMessage("events", 0, offset, json.loads(line)["participant"].encode(), line.encode())
        for offset, line in enumerate(lines)
    ]


def local(replica: ClickHouseServer, sql: str) -> list[tuple[Any, ...]]:
    """A query on one replica's own tables, bypassing the Distributed ones."""
    client = Client("127.0.0.1", port=replica.port, connect_timeout=5, send_receive_timeout=120)
    try:
        return [tuple(row) for row in client.execute(sql)]
    finally:
        client.disconnect()


def fresh_database() -> str:
    return "c" + uuid.uuid4().hex[:10]


def test_cluster_schema_is_replicated_tables_behind_distributed_ones(replicas: ClickHouseReplicas) -> None:
    db = fresh_database()
    store = Store.open(replicas.url(db))
    assert store.cluster == "sw"
    for replica in replicas.replicas:
        engines = dict(local(replica, f"SELECT name, engine FROM system.tables WHERE database = '{db}'"))
        assert {name for name in engines if not name.endswith("_local")} == set(TABLES)
        for table in TABLES:
            assert engines[table] == "Distributed"
            plain = table in ("access_denials", "finding_trail_heads", "case_transitions", "case_trail_heads")
            expected = "ReplicatedMergeTree" if plain else "ReplicatedReplacingMergeTree"
            assert engines[f"{table}_local"] == expected, table
        paths = dict(local(replica, f"SELECT table, zookeeper_path FROM system.replicas WHERE database = '{db}'"))
        assert paths["findings_local"] == f"/clickhouse/tables/01/{db}/findings"
    # Replication is asynchronous: wait for the second replica to have what the first wrote.
    local(replicas.replicas[1], f"SYSTEM SYNC REPLICA {db}.schema_migrations_local")
    versions = local(replicas.replicas[1], f"SELECT version FROM {db}.schema_migrations_local ORDER BY version")
    assert [v for (v,) in versions] == [m.version for m in MIGRATIONS], "the migrations log is replicated too"
    # Opening again (through the other replica) applies nothing.
    again = Store.open(replicas.url(db).replace(replicas.replicas[0].address, replicas.replicas[1].address, 1))
    assert again.migrate() == []
    # A worker-id lease written through one replica is read through the other (streams/worker_lease.py).
    store.write_lease_beat(LeaseBeat("w1", "n1", 10, 3, "h1", 11))
    local(replicas.replicas[1], f"SYSTEM SYNC REPLICA {db}.worker_leases_local")
    [holder] = again.lease_holders("w1")
    assert (holder.nonce, holder.beat, holder.released) == ("n1", 3, False) and 0 <= holder.age_seconds <= 5
    store.close()
    again.close()


def test_a_replica_stopped_mid_stream_loses_nothing_doubles_nothing_and_catches_up(
    replicas: ClickHouseReplicas, day: tuple[Path, list[str]]
) -> None:
    path, lines = day
    expected = self_check(path)
    assert len(expected) > 10, "the simulated day must hold violations"
    unique_events = len({json.loads(line)["event_id"] for line in lines})
    db = fresh_database()
    store = Store.open(replicas.url(db))
    monitor = Monitor([load_licence(DA_NANG)], store)
    inbound = messages(lines)
    batches = [inbound[i : i + BATCH] for i in range(0, len(inbound), BATCH)]
    stop_at, restart_at = len(batches) // 3, 2 * len(batches) // 3
    written_while_down = 0
    for i, batch in enumerate(batches):
        if i == stop_at:
            # The replica the store is connected to and writes into: the hardest one to lose. Killed once the
            # one that stays has fetched everything (the operator guide's planned stop; a crash before that
            # holds the writes of findings instead: the next test).
            for table in TABLES:
                local(replicas.replicas[1], f"SYSTEM SYNC REPLICA {db}.{table}_local")
            replicas.stop_replica(0, kill=True)
        if i == restart_at:
            replicas.start_replica(0)
        outcome = monitor.process_batch(batch)
        if stop_at <= i < restart_at:
            written_while_down += outcome.events
    assert written_while_down > 1000, "the outage must cover a real part of the stream"

    # The restarted replica catches up: it fetches what it missed from the other one.
    up, back = replicas.replicas[1], replicas.replicas[0]
    for table in TABLES:
        local(back, f"SYSTEM SYNC REPLICA {db}.{table}_local")

    # Through the store (the Distributed tables): exactly the self-check's findings, counted once each.
    assert set(store.finding_ids()) == set(expected)
    assert store.count("events") == unique_events
    assert store.count("dead_letters") == 0
    summary = {(p, r, s): n for p, r, s, n in store.findings_summary()}
    wanted: dict[tuple[str, str, str], int] = {}
    for participant, rule, _kind, severity in expected.values():
        wanted[(participant, rule, severity)] = wanted.get((participant, rule, severity), 0) + 1
    assert summary == wanted
    assert store.trail.verify() == [], "the findings trail survives the failover unbroken"
    counted = sum(
        sample.value
        for metric in monitor.metrics.registry.collect()
        if metric.name == "sandboxwatch_findings"
        for sample in metric.samples
        if sample.name == "sandboxwatch_findings_total"
    )
    assert counted == len(expected), "each finding is counted (and alerted on) once"

    # On each replica's own disk: every row once, the same rows on both.
    copies = []
    for replica in (up, back):
        findings = local(
            replica,
            f"SELECT finding_id, participant, rule, kind, severity FROM {db}.findings_local ORDER BY finding_id",
        )
        assert {fid: tuple(rest) for fid, *rest in findings} == expected
        assert len(findings) == len(expected), "a finding row was written twice"
        (events,) = local(replica, f"SELECT count(), uniqExact(participant, event_id) FROM {db}.events_local")
        assert events == (unique_events, unique_events)
        (trail,) = local(replica, f"SELECT count(), uniqExact(finding_id) FROM {db}.finding_trail_local")
        assert trail == (len(expected), len(expected))
        trail_rows = f"SELECT participant, seq, finding_id, entry_hash FROM {db}.finding_trail_local"
        copies.append(local(replica, f"{trail_rows} ORDER BY participant, seq"))
    assert copies[0] == copies[1]

    # A replay of the whole day after a restart (at-least-once delivery, state lost) adds nothing: the
    # dedupe reads go through the Distributed tables.
    replay = Monitor([load_licence(DA_NANG)], Store.open(replicas.url(db)))
    for batch in batches:
        assert replay.process_batch(batch).new_findings == []
    assert local(up, f"SELECT count() FROM {db}.findings_local") == [(len(expected),)]
    store.close()


def test_a_lagging_replica_holds_writes_instead_of_doubling_or_forking_the_trail(
    replicas: ClickHouseReplicas, day: tuple[Path, list[str]]
) -> None:
    _, lines = day
    db = fresh_database()
    first, second = replicas.replicas
    store = Store.open(replicas.url(db))
    monitor = Monitor([load_licence(DA_NANG)], store)
    inbound = messages(lines)
    half = len(inbound) // 2
    monitor.process_batch(inbound[:half])
    gated = ("findings", "finding_trail")
    for table in gated:
        local(second, f"SYSTEM STOP FETCHES {db}.{table}_local")
    # Findings written through the first replica that the second cannot fetch (as if they lived only on a
    # replica that went down right after acknowledging them).
    rest = iter(range(half, len(inbound), BATCH))
    outcome = monitor.process_batch(inbound[half : half + BATCH])
    while not outcome.new_findings:
        start = next(rest)  # StopIteration: the day's second half must hold findings
        outcome = monitor.process_batch(inbound[start + BATCH : start + 2 * BATCH])
    chained = local(first, f"SELECT count() FROM {db}.finding_trail_local")

    # A writer connected to the lagging replica (a worker restarted there, or failed over to it).
    lagging = Store(connect(f"clickhouse://{second.address}/{db}?cluster=sw"), "sw")
    assert lagging.replica_gate is not None
    lagging.replica_gate.wait = 1.0
    missing = r"findings: (\d+ inserted part\(s\) not fetched yet|replication log not pulled)"
    with pytest.raises(StoreError, match=missing):
        lagging.write_findings(outcome.findings)
    assert local(first, f"SELECT count() FROM {db}.finding_trail_local") == chained, "nothing written meanwhile"

    for table in gated:
        local(second, f"SYSTEM START FETCHES {db}.{table}_local")
    lagging.replica_gate.wait = 60.0
    assert lagging.write_findings(outcome.findings) == [], "once caught up, the stored findings are known"
    assert lagging.trail.verify() == []
    assert local(second, f"SELECT count() FROM {db}.finding_trail_local") == chained
    lagging.close()
    store.close()


def test_the_stream_worker_writes_through_a_replica_outage(
    replicas: ClickHouseReplicas, day: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """The same outage under the real worker process (faust, tansu): the store URL reaches it whole."""
    path, lines = day
    expected = self_check(path)
    unique = len({json.loads(line)["event_id"] for line in lines})
    try:
        broker = TansuBroker().start()
    except ServiceError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    pipeline = Pipeline(broker.address, replicas.url("unused"), tmp_path)
    pipeline.store_url = replicas.url(pipeline.name)
    try:
        third = len(lines) // 3
        publish_lines(pipeline.kafka, pipeline.topics.events, lines[:third])
        pipeline.start_worker()
        pipeline.wait_until(lambda: has_migrated(replicas, pipeline.name), "the worker to create its tables")
        store = pipeline.store()
        pipeline.wait_until(lambda: store.count("events") == len({*map(event_id, lines[:third])}), "a third")
        for table in TABLES:
            local(replicas.replicas[1], f"SYSTEM SYNC REPLICA {pipeline.name}.{table}_local")
        replicas.stop_replica(0, kill=True)
        publish_lines(pipeline.kafka, pipeline.topics.events, lines[third : 2 * third])
        pipeline.wait_until(
            lambda: store.count("events") == len({*map(event_id, lines[: 2 * third])}), "two thirds, one replica down"
        )
        replicas.start_replica(0)
        publish_lines(pipeline.kafka, pipeline.topics.events, lines[2 * third :])
        # Done means the worker says so: it counts a finding only once write_findings has returned, i.e.
        # after the finding, its trail entry and the chain head are all stored. Rows in the findings table
        # alone are not done: the trail rows follow them (the last findings come from the quiet flush, and
        # a check that lands between the two inserts sees findings not chained yet).
        pipeline.wait_until(
            lambda: store.count("events") == unique and counted_findings(pipeline) >= len(expected), "the whole day"
        )
        assert counted_findings(pipeline) == len(expected), "each finding is counted (and alerted on) once"
        assert set(store.finding_ids()) == set(expected)
        assert store.trail.verify() == []
        for table in TABLES:
            local(replicas.replicas[0], f"SYSTEM SYNC REPLICA {pipeline.name}.{table}_local")
        for replica in replicas.replicas:
            rows = local(replica, f"SELECT count(), uniqExact(finding_id) FROM {pipeline.name}.findings_local")
            assert rows == [(len(expected), len(expected))]
            rows = local(replica, f"SELECT uniqExact(participant, event_id) FROM {pipeline.name}.events_local")
            assert rows == [(unique,)]
    finally:
        pipeline.stop_worker()
        broker.stop()


def counted_findings(pipeline: Pipeline) -> float:
    """``sandboxwatch_findings_total`` summed over its labels: the findings the worker has stored and chained."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in pipeline.metrics_text().splitlines()
        if line.startswith("sandboxwatch_findings_total{")
    )


def event_id(line: str) -> str:
    return str(json.loads(line)["event_id"])


def has_migrated(replicas: ClickHouseReplicas, database: str) -> bool:
    rows = local(replicas.replicas[0], f"SELECT count() FROM system.tables WHERE database = '{database}'")
    return rows == [(2 * len(TABLES),)]
