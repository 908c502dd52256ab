"""The store across ClickHouse nodes: URL options, connection settings and the cluster form of the schema.

A store URL with ``?cluster=NAME`` (the name of a ``remote_servers`` entry in the servers' config) keeps
each table as ``TABLE_local``, a Replicated* table whose ZooKeeper path is ``/clickhouse/tables/{shard}/DB/
TABLE`` with the server's ``{shard}``/``{replica}`` macros, and puts a ``Distributed`` table under the plain
name in front of it. Every reader and writer of the store keeps using ``DB.TABLE``; only the DDL differs, and
it is derived from the single-node migrations rather than written twice, so the two can never drift.

Why the writes stay exact through the Distributed tables:

- Each Distributed table shards by a hash of the first ``ORDER BY`` column (the participant for events,
  findings and the trail): a row written twice always reaches the same shard, where ReplacingMergeTree
  collapses it, and counts (``uniqExact``) are exact before any merge.
- ``internal_replication`` must be ``true`` in the cluster config: a write goes to one replica of its shard
  and the Replicated table copies it, instead of the Distributed table writing every replica itself (which
  would double rows whenever one copy failed and was retried).
- ``insert_distributed_sync=1``: an insert returns only when a replica of the owning shard holds the rows,
  never when they merely sit in a queue file on the node we talk to. The worker commits Kafka offsets after
  the store write, so an acknowledged write must already live on the shard.
- ``load_balancing=in_order`` with the default ``prefer_localhost_replica=1``: the existence reads that keep
  writes idempotent ("insert only ids not stored") go to the same replica the insert went to: the node we
  are connected to when it is a replica of the shard, else the first healthy replica in config order. So
  the writer reads its own writes without waiting for replication.
- No ``insert_quorum``: with two replicas a quorum of two would stop every write while one is down. What a
  quorum would protect (reads on a replica that lacks an acknowledged part) the ReplicaGate below checks.
- ``alt_hosts`` (clickhouse-driver) lists the other nodes: when the node we talk to stops, the next
  statement reconnects to the next one and goes on writing there.
- The layout run and tested is one shard of N replicas (every node holds the whole record): the
  ReplicaGate looks at the replica of the node we talk to, which with more shards covers only its own.

Only SQL that ClickHouse 18.16 and current releases both accept: the explicit-argument form of the
Replicated engines with ``PARTITION BY``/``ORDER BY`` clauses, ``ON CLUSTER`` DDL (needs ``distributed_ddl``
in the servers' config) and ``Distributed(cluster, db, table, key)``."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlparse

from sandboxwatch.store.backends import Backend, StoreError
from sandboxwatch.store.sql_text import quote

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_HOST_PORT = re.compile(r"[A-Za-z0-9._\-\[\]:]+:[0-9]{1,5}\Z")
_CREATE = re.compile(
    r"CREATE TABLE IF NOT EXISTS (?P<db>\w+)\.(?P<table>\w+) \((?P<columns>.*)\) "
    r"ENGINE = (?P<engine>ReplacingMergeTree|MergeTree)\(\)(?P<clauses>.*)\Z",
    re.DOTALL,
)
_ORDER_BY = re.compile(r"ORDER BY \(?\s*(?P<first>\w+)")

LOCAL_SUFFIX = "_local"
ZOOKEEPER_ROOT = "/clickhouse/tables"


class ClusterConfigError(StoreError):
    """A store URL option or a schema statement the cluster mode cannot use; the message says which."""


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """What a ``clickhouse://`` URL's query string may carry."""

    cluster: str | None = None
    alt_hosts: str | None = None

    def client_arguments(self) -> dict[str, Any]:
        """Keyword arguments for ``clickhouse_driver.Client`` (empty for a single node: nothing changes)."""
        arguments: dict[str, Any] = {}
        if self.alt_hosts:
            arguments["alt_hosts"] = self.alt_hosts
        if self.cluster:
            arguments["settings"] = {"insert_distributed_sync": 1, "load_balancing": "in_order"}
        return arguments


def server_options(url: str) -> ServerOptions:
    """Reads ``?cluster=NAME&alt_hosts=HOST:PORT,HOST:PORT``. An unknown or malformed option is an error,
    not ignored: a typo in ``cluster`` would otherwise run a cluster on single-node tables, unreplicated."""
    query = urlparse(url).query
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise ClusterConfigError(f"store URL options {query!r}: {exc}") from exc
    options: dict[str, str] = {}
    for key, value in pairs:
        if key not in ("cluster", "alt_hosts"):
            raise ClusterConfigError(f"store URL option {key!r} is unknown (known: cluster, alt_hosts)")
        if key in options:
            raise ClusterConfigError(f"store URL option {key!r} is given twice")
        options[key] = value
    cluster = options.get("cluster")
    if cluster is not None and not _NAME.match(cluster):
        raise ClusterConfigError(f"store URL option cluster={cluster!r} is not a ClickHouse cluster name")
    alt_hosts = options.get("alt_hosts")
    if alt_hosts is not None:
        for host in alt_hosts.split(","):
            if not _HOST_PORT.match(host):
                raise ClusterConfigError(f"store URL option alt_hosts: {host!r} is not HOST:PORT")
    return ServerOptions(cluster, alt_hosts)


def store_cluster(url: str) -> str | None:
    """The cluster a store URL names, or None for a single node (and for the embedded store, which has no
    query string to carry one)."""
    if url.startswith("chdb://"):
        if "?" in url:
            raise ClusterConfigError("the embedded store (chdb://) is one process on one disk: no cluster options")
        return None
    return server_options(url).cluster


def database_statement(db: str, cluster: str) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {db} ON CLUSTER {cluster}"


_ADD_COLUMN = re.compile(r"^ALTER TABLE (?P<db>\w+)\.(?P<table>\w+) ADD COLUMN (?P<rest>.+)$", re.S)


_CLUSTER_ADD_COLUMN = re.compile(
    r"^ALTER TABLE (?P<db>\w+)\.(?P<table>\w+)(?: ON CLUSTER \w+)? ADD COLUMN (?P<column>\w+)\s"
)


def added_column(statement: str) -> tuple[str, str, str] | None:
    """(db, table, column) of an ``ADD COLUMN``, on one server or a cluster. The column may already be there
    although the migration is not recorded: two workers starting on a new database migrate at the same time
    (a scaled-out deployment does), and on a cluster ClickHouse 18.16 runs the ALTER on every replica of the
    shard although the Replicated table has already carried the change to the others. Either answers "column
    already exists" (code 44) for a change that did happen: the caller checks the column instead of failing."""
    match = _CLUSTER_ADD_COLUMN.match(statement.strip())
    return (match["db"], match["table"], match["column"]) if match else None


def cluster_statements(statement: str, cluster: str, create_of: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The cluster form of one single-node ``CREATE TABLE`` migration: the Replicated local table, then the
    Distributed table under the original name; or of an ``ADD COLUMN``, applied to both. Anything else (another
    ALTER, another engine) is refused rather
    than guessed: a new migration kind must teach this function its cluster form, and the schema tests run
    every migration through it."""
    added = _ADD_COLUMN.match(statement.strip())
    if added is not None:
        # A new column: on the Replicated local table (ClickHouse replicates the change) and on the
        # Distributed table above it, whose columns must match for reads and inserts to carry it.
        # ClickHouse refuses ALTER ... ON CLUSTER of a Distributed table in a replicated shard, so that one is
        # dropped and created again from its table's own CREATE (it holds no data: the rows are local).
        db, table, rest = added["db"], added["table"], added["rest"]
        create = (create_of or {}).get(table)
        if create is None:
            raise ClusterConfigError(f"{db}.{table}: ADD COLUMN needs the table's CREATE migration to rebuild it")
        return (
            f"ALTER TABLE {db}.{table}{LOCAL_SUFFIX} ON CLUSTER {cluster} ADD COLUMN {rest}",
            f"DROP TABLE IF EXISTS {db}.{table} ON CLUSTER {cluster}",
            cluster_statements(create, cluster)[1],
        )
    match = _CREATE.match(statement.strip())
    if match is None:
        raise ClusterConfigError(
            "cluster mode translates only 'CREATE TABLE IF NOT EXISTS db.t (...) ENGINE = [Replacing]MergeTree() "
            f"...' migrations; teach store/cluster.py this one: {statement.strip()[:120]!r}"
        )
    db, table, clauses = match["db"], match["table"], match["clauses"]
    order = _ORDER_BY.search(clauses)
    if order is None:
        raise ClusterConfigError(f"{db}.{table}: no ORDER BY to shard by")
    local = table + LOCAL_SUFFIX
    path = f"{ZOOKEEPER_ROOT}/{{shard}}/{db}/{table}"
    replicated = (
        f"CREATE TABLE IF NOT EXISTS {db}.{local} ON CLUSTER {cluster} ({match['columns']}) "
        f"ENGINE = Replicated{match['engine']}('{path}', '{{replica}}'){clauses}"
    )
    distributed = (
        f"CREATE TABLE IF NOT EXISTS {db}.{table} ON CLUSTER {cluster} AS {db}.{local} "
        f"ENGINE = Distributed({cluster}, {db}, {local}, cityHash64({order['first']}))"
    )
    return replicated, distributed


# The tables whose reads decide what a write does next: the findings dedupe (a stale read counts and alerts
# a finding twice) and the trail's chained ids and heads (a stale head forks the chain). Events and dead
# letters are not gated: a stale dedupe read there writes a row twice, which ReplacingMergeTree collapses
# and every count (uniqExact) already ignores.
GATED_TABLES = ("findings", "finding_trail")
CATCH_UP_SECONDS = 30.0


class ReplicaGate:
    """Holds writes until the replica we are connected to has every part the other replicas acknowledged.

    Replication is asynchronous: after a failover (or a worker starting against a replica that was just
    restarted) the node we talk to may not yet hold the last rows written through another one. Its dedupe
    reads would then miss them, and the trail would chain from a stale head: a second entry at the same
    position, and findings counted (alerted on) twice. ZooKeeper's replication log lists every acknowledged
    part. The gate passes when, for each table whose reads steer writes, this replica has pulled the whole
    log (``log_pointer`` past ``log_max_index``) and fetched every inserted part (``inserts_in_queue`` = 0).
    Otherwise it waits, and after ``wait`` seconds raises StoreError naming what is missing: typically parts
    that live only on a replica that is down. Nothing is lost (they are on that replica's disk and arrive when
    it returns, and Kafka offsets are not committed meanwhile), but a stopped writer beats a silently forked
    record.

    Not ``SYSTEM SYNC REPLICA``: on 18.16 it ignores ``receive_timeout`` and can wait forever."""

    def __init__(self, backend: Backend, db: str, wait: float = CATCH_UP_SECONDS, poll: float = 0.05) -> None:
        self.backend = backend
        self.db = db
        self.wait = wait
        self.poll = poll
        tables = ", ".join(f"'{t}{LOCAL_SUFFIX}'" for t in GATED_TABLES)
        self._sql = (
            "SELECT table, is_readonly, inserts_in_queue, log_pointer, log_max_index, zookeeper_path "
            f"FROM system.replicas WHERE database = {quote(db)} AND table IN ({tables})"
        )

    def behind(self) -> list[str]:
        """What keeps this replica's reads from being trusted yet, per gated table (empty: caught up)."""
        rows = {str(row[0]): row[1:] for row in self.backend.rows(self._sql)}
        lagging = []
        for table in GATED_TABLES:
            state = rows.get(table + LOCAL_SUFFIX)
            if state is None:
                lagging.append(f"{table}: no replica on this server")
                continue
            readonly, queued, pointer, newest = (int(value) for value in state[:4])
            path = str(state[4])
            if readonly:
                lagging.append(f"{table}: read-only (no ZooKeeper session)")
            elif pointer <= newest and not (pointer == newest == 0 and self._log_is_empty(path)):
                lagging.append(f"{table}: replication log not pulled (entry {pointer} of {newest})")
            elif queued:
                lagging.append(f"{table}: {queued} inserted part(s) not fetched yet")
        return lagging

    def _log_is_empty(self, zookeeper_path: str) -> bool:
        """``log_max_index`` is 0 both for an empty log and for one holding only entry 0."""
        rows = self.backend.rows(f"SELECT count() FROM system.zookeeper WHERE path = {quote(zookeeper_path + '/log')}")
        return not rows or not int(rows[0][0])

    def wait_until_caught_up(self) -> None:
        deadline = time.monotonic() + self.wait
        while True:
            lagging = self.behind()
            if not lagging:
                return
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"the ClickHouse replica serving {self.db} has not caught up after {self.wait:.0f}s "
                    f"({'; '.join(lagging)}); a replica holding those parts may be down. Writing now could "
                    "double findings or fork the findings trail, so the store does not write."
                )
            time.sleep(self.poll)
