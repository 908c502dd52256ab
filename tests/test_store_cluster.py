"""The store's cluster mode without a cluster: URL options, the DDL it derives, and that a modern ClickHouse
(chdb's) parses every statement; the 18.16 server runs them in tests/integration/test_store_cluster.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from sandboxwatch.store.backends import Backend, EmbeddedBackend, ServerBackend, StoreError
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.cluster import (
    ClusterConfigError,
    ReplicaGate,
    ServerOptions,
    cluster_statements,
    server_options,
    store_cluster,
)
from sandboxwatch.store.schema import MIGRATIONS, MIGRATIONS_TABLE, bootstrap_statements, migration_statements
from sandboxwatch.store.sql_text import quote


def test_a_single_node_url_changes_nothing() -> None:
    options = server_options("clickhouse://u:p@h:9000/sandboxwatch")
    assert options == ServerOptions(None, None)
    assert options.client_arguments() == {}
    assert store_cluster("clickhouse://h:9000/db") is None
    assert store_cluster("chdb:///tmp/x") is None


def test_cluster_options_become_driver_arguments() -> None:
    options = server_options("clickhouse://h1:9000/db?cluster=sw_1&alt_hosts=h2:9000,10.0.0.3:9001")
    assert options == ServerOptions("sw_1", "h2:9000,10.0.0.3:9001")
    assert options.client_arguments() == {
        "alt_hosts": "h2:9000,10.0.0.3:9001",
        "settings": {"insert_distributed_sync": 1, "load_balancing": "in_order"},
    }
    backend = ServerBackend("clickhouse://h1:9000/db?cluster=sw_1&alt_hosts=h2:9000")
    assert backend.database == "db", "the query string is not part of the database name"
    assert list(backend._client.connection.hosts) == [("h1", 9000), ("h2", 9000)]
    assert backend._client.settings == {"insert_distributed_sync": 1, "load_balancing": "in_order"}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("clickhouse://h/db?clutser=sw", "option 'clutser' is unknown"),
        ("clickhouse://h/db?cluster=sw&cluster=other", "given twice"),
        ("clickhouse://h/db?cluster=", "not a ClickHouse cluster name"),
        ("clickhouse://h/db?cluster=sw;DROP", "not a ClickHouse cluster name"),
        ("clickhouse://h/db?cluster=sw&alt_hosts=h2", "'h2' is not HOST:PORT"),
        ("clickhouse://h/db?cluster=sw&alt_hosts=h2:9000,", "'' is not HOST:PORT"),
        ("clickhouse://h/db?cluster", "store URL options 'cluster'"),
    ],
)
def test_a_wrong_option_is_refused_not_ignored(url: str, reason: str) -> None:
    with pytest.raises(ClusterConfigError, match=reason):
        server_options(url)


def test_the_embedded_store_refuses_cluster_options_before_creating_anything(tmp_path: Path) -> None:
    target = tmp_path / "never"
    with pytest.raises(StoreError, match="embedded store"):
        Store.open(f"chdb://{target}?cluster=sw")
    assert not target.exists()


def test_single_node_ddl_is_the_migrations_as_written() -> None:
    assert bootstrap_statements("db", None) == ("CREATE DATABASE IF NOT EXISTS db", MIGRATIONS_TABLE.format(db="db"))
    for migration in MIGRATIONS:
        assert migration_statements(migration, "db", None) == tuple(s.format(db="db") for s in migration.statements)


def test_each_table_becomes_a_replicated_table_behind_a_distributed_one() -> None:
    statements = [s for m in MIGRATIONS for s in migration_statements(m, "db", "sw")]
    # Two per statement; three for an ADD COLUMN (the Distributed table is dropped and created again).
    adds = sum(1 for m in MIGRATIONS for s in m.statements if " ADD COLUMN " in s)
    assert len(statements) == 2 * sum(len(m.statements) for m in MIGRATIONS) + adds
    findings_local, findings = statements[2:4]
    assert findings_local.startswith("CREATE TABLE IF NOT EXISTS db.findings_local ON CLUSTER sw (")
    assert "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/findings', '{replica}')" in (
        findings_local
    )
    assert findings_local.rstrip().endswith("PARTITION BY toYYYYMM(ts)\n            ORDER BY (participant, finding_id)")
    assert findings == (
        "CREATE TABLE IF NOT EXISTS db.findings ON CLUSTER sw AS db.findings_local "
        "ENGINE = Distributed(sw, db, findings_local, cityHash64(participant))"
    )
    keys = {s.split()[5]: s.rsplit("cityHash64(", 1)[1] for s in statements if "Distributed(" in s}
    assert keys["db.dead_letters"] == "letter_id))"
    assert keys["db.access_denials"] == "at))"
    denials = next(s for s in statements if "db.access_denials_local" in s)
    assert "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db/access_denials', '{replica}')" in denials
    database, migrations_local, migrations = bootstrap_statements("db", "sw")
    assert database == "CREATE DATABASE IF NOT EXISTS db ON CLUSTER sw"
    assert "db.schema_migrations_local ON CLUSTER sw" in migrations_local
    assert migrations.endswith("Distributed(sw, db, schema_migrations_local, cityHash64(version))")


def test_an_added_column_goes_to_the_local_and_the_distributed_table() -> None:
    create = "CREATE TABLE IF NOT EXISTS db.findings (a String) ENGINE = MergeTree() ORDER BY a"
    statements = cluster_statements("ALTER TABLE db.findings ADD COLUMN x UInt8 DEFAULT 1", "sw", {"findings": create})
    assert statements == (
        "ALTER TABLE db.findings_local ON CLUSTER sw ADD COLUMN x UInt8 DEFAULT 1",
        "DROP TABLE IF EXISTS db.findings ON CLUSTER sw",
        "CREATE TABLE IF NOT EXISTS db.findings ON CLUSTER sw AS db.findings_local "
        "ENGINE = Distributed(sw, db, findings_local, cityHash64(a))",
    )


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE db.findings DROP COLUMN x",
        "CREATE TABLE IF NOT EXISTS db.t (a String) ENGINE = Log",
        "CREATE TABLE IF NOT EXISTS db.t (a String) ENGINE = SummingMergeTree() ORDER BY a",
        "CREATE TABLE db.t (a String) ENGINE = MergeTree() ORDER BY a",
        "CREATE TABLE IF NOT EXISTS db.t (a String) ENGINE = MergeTree() PARTITION BY a",
    ],
)
def test_a_statement_the_cluster_mode_cannot_translate_is_refused(statement: str) -> None:
    with pytest.raises(ClusterConfigError):
        cluster_statements(statement, "sw")


def test_a_current_clickhouse_parses_every_cluster_statement(backend: EmbeddedBackend) -> None:
    """chdb is a current ClickHouse; ``formatQuery`` parses without running (no ZooKeeper here)."""
    statements = [*bootstrap_statements("db", "sw")]
    statements += [s for m in MIGRATIONS for s in migration_statements(m, "db", "sw")]
    for statement in statements:
        (formatted,) = backend.rows(f"SELECT formatQuery({quote(statement)})")[0]
        assert "ON CLUSTER sw" in str(formatted)
    with pytest.raises(StoreError, match="Syntax error"):
        backend.rows(f"SELECT formatQuery({quote('CREATE TABLE x (a String) ENGIN = Log')})")


class ReplicaState:
    """Answers the gate's two queries with given system.replicas rows and ZooKeeper log sizes: the gate's
    decisions without a cluster (the real one is exercised in tests/integration/test_store_cluster.py)."""

    database = "db"

    def __init__(self, rows: list[tuple[Any, ...]], log_sizes: dict[str, int]) -> None:
        self.replicas = rows
        self.log_sizes = log_sizes
        self.queries: list[str] = []

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        self.queries.append(sql)
        if "system.zookeeper" in sql:
            path = sql.split("path = '", 1)[1].rstrip("'")
            return [(self.log_sizes[path],)]
        assert "FROM system.replicas WHERE database = 'db'" in sql
        return self.replicas


def replica(table: str, readonly: int = 0, queued: int = 0, pointer: int = 8, newest: int = 7) -> tuple[Any, ...]:
    return (f"{table}_local", readonly, queued, pointer, newest, f"/clickhouse/tables/01/db/{table}")


@pytest.mark.parametrize(
    ("rows", "logs", "lagging"),
    [
        ([replica("findings"), replica("finding_trail")], {}, []),
        (
            [replica("findings", pointer=0, newest=0), replica("finding_trail")],
            {"/clickhouse/tables/01/db/findings/log": 0},
            [],
        ),
        (
            [replica("findings", pointer=0, newest=0), replica("finding_trail")],
            {"/clickhouse/tables/01/db/findings/log": 1},
            ["findings: replication log not pulled (entry 0 of 0)"],
        ),
        (
            [replica("findings", pointer=7, newest=9), replica("finding_trail", queued=3)],
            {},
            [
                "findings: replication log not pulled (entry 7 of 9)",
                "finding_trail: 3 inserted part(s) not fetched yet",
            ],
        ),
        (
            [replica("findings", readonly=1, queued=2)],
            {},
            ["findings: read-only (no ZooKeeper session)", "finding_trail: no replica on this server"],
        ),
    ],
)
def test_the_replica_gate_names_what_the_replica_lacks(
    rows: list[tuple[Any, ...]], logs: dict[str, int], lagging: list[str]
) -> None:
    gate = ReplicaGate(cast(Backend, ReplicaState(rows, logs)), "db")
    assert gate.behind() == lagging


def test_the_replica_gate_fails_loudly_when_the_replica_stays_behind() -> None:
    state = ReplicaState([replica("findings", queued=1), replica("finding_trail")], {})
    gate = ReplicaGate(cast(Backend, state), "db", wait=0.2, poll=0.05)
    with pytest.raises(StoreError, match=r"has not caught up after 0s \(findings: 1 inserted part\(s\) not fetched"):
        gate.wait_until_caught_up()
    assert len(state.queries) >= 3, "it polls until the deadline"


def test_a_cluster_add_column_is_recognised_so_an_already_there_answer_can_be_checked() -> None:
    from sandboxwatch.store.cluster import added_column

    assert added_column("ALTER TABLE sw.findings_local ON CLUSTER c1 ADD COLUMN digest_version UInt8 DEFAULT 1") == (
        "sw",
        "findings_local",
        "digest_version",
    )
    assert added_column("ALTER TABLE sw.findings ADD COLUMN digest_version UInt8") == (
        "sw",
        "findings",
        "digest_version",
    )
    assert added_column("DROP TABLE IF EXISTS sw.findings ON CLUSTER c1") is None
