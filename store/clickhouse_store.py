"""Writes and reads the sandboxwatch record in ClickHouse.

Writes are idempotent: each batch first asks which of its ids are already stored and inserts only the
rest, so a replayed batch after a crash adds nothing, and the ReplacingMergeTree tables collapse any row
that two racing writers both inserted. Timestamps written as ``recorded`` are bookkeeping (when the store
saw the row); no rule reads them."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sandboxwatch.rules_engine.event_reader import parse_json_line
from sandboxwatch.rules_engine.events import EventError
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.licence import Licence, licence_body
from sandboxwatch.store.backends import Backend, StoreError, connect
from sandboxwatch.store.cluster import ReplicaGate, added_column, store_cluster
from sandboxwatch.store.finding_trail import FindingTrail
from sandboxwatch.store.records import (
    DEAD_LETTER_COLUMNS,
    EVENT_COLUMNS,
    FINDING_COLUMNS,
    DeadLetter,
    EventRecord,
    dead_letter_row,
    event_columns,
    event_row,
    finding_row,
    utf8_text,
)
from sandboxwatch.store.schema import MIGRATIONS, bootstrap_statements, migration_statements
from sandboxwatch.store.sql_text import datetime_literal, in_list, quote
from sandboxwatch.store.worker_leases import LeaseBeat, LeaseHolder, holders, write_beat

T = TypeVar("T")
# Ids per existence query: long enough to make one round trip per batch, short enough for any server.
_LOOKUP_CHUNK = 2000

log = logging.getLogger(__name__)


def recorded_now() -> datetime:
    """The bookkeeping time the store stamps on the rows it writes (``recorded``: UTC, whole seconds); a
    reader that asks for rows stored since a moment takes that moment from this clock."""
    return datetime.now(UTC).replace(microsecond=0)


_now = recorded_now  # the writers' short name


class Store:
    def __init__(self, backend: Backend, cluster: str | None = None) -> None:
        """``cluster``: the ClickHouse cluster whose Replicated and Distributed tables hold the record
        (store/cluster.py); None for one server or the embedded store."""
        self.backend = backend
        self.db = backend.database
        self.cluster = cluster
        self.replica_gate = ReplicaGate(backend, self.db) if cluster else None
        gate = self.replica_gate.wait_until_caught_up if self.replica_gate is not None else None
        self.trail = FindingTrail(backend, self.db, before_read=gate)
        # Findings this process inserted whose write has not completed (the trail step failed): a retry of
        # the write finds them stored, and must still report them as new, or they would never be counted.
        self._inserted_unreported: dict[str, Finding] = {}

    @classmethod
    def open(cls, url: str) -> Store:
        cluster = store_cluster(url)  # first: a bad option must not create anything
        store = cls(connect(url), cluster)
        store.migrate()
        return store

    def close(self) -> None:
        self.backend.close()

    def ping(self, timeout: float) -> None:
        """One cheap round trip that says whether the store can be used now (raises StoreError if not): the
        server answers within ``timeout`` and still holds this store's database. An idle worker's health
        probe (store/store_probe.py); it writes nothing."""
        rows = self.backend.probe(f"SELECT count() FROM system.databases WHERE name = {quote(self.db)}", timeout)
        if not rows or int(rows[0][0]) != 1:
            raise StoreError(f"the store's database {self.db} does not exist")

    # schema -------------------------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply the migrations this database has not seen, in order; returns the versions applied.

        On a cluster the DDL runs ``ON CLUSTER``, which waits for every replica: so it runs only when there
        is something to do, and a worker restarting while one replica is down is not held up by it."""
        if self.cluster is None or not self._has_migrations_table():
            for statement in bootstrap_statements(self.db, self.cluster):
                self.backend.command(statement)
        done = {int(row[0]) for row in self.backend.rows(f"SELECT version FROM {self.db}.schema_migrations")}
        applied = []
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            for statement in migration_statements(migration, self.db, self.cluster):
                try:
                    self.backend.command(statement)
                except StoreError:
                    if not self._column_is_there(statement):
                        raise
            self.backend.insert(
                "schema_migrations",
                ("version", "name", "applied"),
                [(migration.version, migration.name, _now())],
            )
            applied.append(migration.version)
        return applied

    def _column_is_there(self, statement: str) -> bool:
        added = added_column(statement)
        if added is None:
            return False
        db, table, column = added
        rows = self.backend.rows(
            f"SELECT count() FROM system.columns WHERE database = {quote(db)} AND table = {quote(table)} "
            f"AND name = {quote(column)}"
        )
        return bool(rows and rows[0][0])

    def _has_migrations_table(self) -> bool:
        rows = self.backend.rows(
            f"SELECT count() FROM system.tables WHERE database = {quote(self.db)} AND name = 'schema_migrations'"
        )
        return bool(rows and rows[0][0])

    # writes ---------------------------------------------------------------------------------------------
    def write_findings(self, findings: Sequence[Finding]) -> list[Finding]:
        """Returns the findings that were not stored before: those are the new ones to count and alert on."""
        if self.replica_gate is not None and findings:
            self.replica_gate.wait_until_caught_up()
        fresh = self._absent(findings, lambda f: f.finding_id, "findings", "finding_id")
        now = _now()
        self.backend.insert("findings", FINDING_COLUMNS, [finding_row(f, now) for f in fresh])
        self._inserted_unreported.update((f.finding_id, f) for f in fresh)
        # All of them, not only the fresh: a crash between the two inserts leaves stored findings unchained.
        self.trail.append(findings, now)
        new = [f for f in findings if self._inserted_unreported.pop(f.finding_id, None) is not None]
        return new

    def write_events(self, records: Sequence[EventRecord], check: bool = True) -> list[EventRecord]:
        """``check=False`` skips the existence query, for callers that know the events are new."""
        fresh = self._fresh_events(records, check)
        self.backend.insert_columns("events", EVENT_COLUMNS, event_columns(fresh, _now()))
        return fresh

    def write_events_as_rows(self, records: Sequence[EventRecord], check: bool = True) -> list[EventRecord]:
        """``write_events`` as it was before the columnar path (a row tuple per event, transposed by the
        backend; DateTime columns parsed from text by chdb): kept so bench/monitor_bench.py can measure the
        two in one run. Stores exactly what ``write_events`` stores."""
        fresh = self._fresh_events(records, check)
        now = _now()
        self.backend.insert("events", EVENT_COLUMNS, [event_row(r, now) for r in fresh])
        return fresh

    def _fresh_events(self, records: Sequence[EventRecord], check: bool) -> list[EventRecord]:
        if not check:
            return list(records)
        return self._absent(
            records,
            lambda r: f"{r.event.participant}\n{r.event.event_id}",
            "events",
            "concat(participant, '\\n', event_id)",
        )

    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
        fresh = self._absent(letters, lambda d: d.letter_id, "dead_letters", "letter_id")
        now = _now()
        self.backend.insert("dead_letters", DEAD_LETTER_COLUMNS, [dead_letter_row(d, now) for d in fresh])
        return fresh

    def record_licence(self, licence: Licence, path: Path) -> str:
        """Keeps every licence version the monitor ran with, so a finding can be tied to the text it used."""
        body = licence_body(path)
        digest = hashlib.sha256(body.encode()).hexdigest()
        known = self.backend.rows(
            f"SELECT count() FROM {self.db}.licence_versions WHERE licence_id = {quote(licence.header.id)} "
            f"AND sha256 = {quote(digest)}"
        )
        if not known or not known[0][0]:
            self.backend.insert(
                "licence_versions",
                ("licence_id", "participant", "sha256", "path", "body", "loaded"),
                [(licence.header.id, licence.header.participant, digest, str(path), body, _now())],
            )
        return digest

    # worker-id leases (streams/worker_lease.py) -----------------------------------------------------------
    def write_lease_beat(self, beat: LeaseBeat) -> None:
        write_beat(self.backend, self.db, beat)

    def lease_holders(self, worker_id: str) -> list[LeaseHolder]:
        return holders(self.backend, self.db, worker_id)

    def _absent(self, items: Sequence[T], key: Callable[[T], str], table: str, expr: str) -> list[T]:
        unique: dict[str, T] = {}
        for item in items:
            # The ids as stored: a lone surrogate has no UTF-8 form and is stored as "?" (records.utf8_text).
            unique.setdefault(utf8_text(key(item)), item)
        if not unique:
            return []
        present: set[str] = set()
        ids = list(unique)
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            sql = f"SELECT {expr} AS k FROM {self.db}.{table} WHERE k IN {in_list(chunk)}"
            if table == "events":
                participants = {i.split("\n", 1)[0] for i in chunk}
                sql += f" AND participant IN {in_list(participants)}"
            present.update(str(row[0]) for row in self.backend.rows(sql))
        return [item for k, item in unique.items() if k not in present]

    def write_findings_without_trail(self, findings: Sequence[Finding]) -> list[Finding]:
        """What ``write_findings`` does apart from chaining (existence check, insert): the baseline
        bench/trail_bench.py measures the trail's cost against. Not for the record: it leaves findings unchained."""
        fresh = self._absent(findings, lambda f: f.finding_id, "findings", "finding_id")
        self.backend.insert("findings", FINDING_COLUMNS, [finding_row(f, _now()) for f in fresh])
        return fresh

    def wait_for_running_inserts(self, timeout: float) -> bool:
        """Wait until the inserts into this database running now are over (False if some still run after
        ``timeout`` seconds). A client killed mid-insert (kill -9 of a worker) can leave its insert running
        on the server, to land after the client is gone: a worker starting in its place waits for it before
        asking which events are stored, or it would store them again."""
        import time

        def running() -> set[str]:
            like = quote(f"INSERT INTO {self.db}.%")
            try:
                rows = self.backend.rows(f"SELECT query_id FROM system.processes WHERE query LIKE {like}")
            except StoreError:  # a backend without the table (or without the right to read it): nothing to wait for
                return set()
            return {str(row[0]) for row in rows}

        pending = running()
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            time.sleep(0.2)
            pending &= running()
        return not pending

    # reads ----------------------------------------------------------------------------------------------
    def count(
        self,
        table: str,
        participant: str | None = None,
        *,
        event_id: str | None = None,
        ts_from: datetime | None = None,
        ts_to: datetime | None = None,
    ) -> int:
        """Rows counted once per id even before ReplacingMergeTree merges (auditors want exact numbers); only
        those of one participant, one event id, or event times in ``ts_from``..``ts_to`` (both included) when
        given."""
        key = {"findings": "finding_id", "events": "participant, event_id", "dead_letters": "letter_id"}[table]
        where = ["1"]
        if participant is not None:
            where.append(f"participant = {quote(participant)}")
        if event_id is not None:
            where.append(f"event_id = {quote(event_id)}")
        if ts_from is not None:
            where.append(f"ts >= {datetime_literal(ts_from)}")
        if ts_to is not None:
            where.append(f"ts <= {datetime_literal(ts_to)}")
        rows = self.backend.rows(f"SELECT uniqExact({key}) FROM {self.db}.{table} WHERE {' AND '.join(where)}")
        return int(rows[0][0]) if rows else 0

    def raw_count(self, table: str) -> int:
        rows = self.backend.rows(f"SELECT count() FROM {self.db}.{table}")
        return int(rows[0][0]) if rows else 0

    def findings_summary(self) -> list[tuple[str, str, str, int]]:
        """(participant, rule, severity, findings), most findings first."""
        rows = self.backend.rows(
            f"SELECT participant, rule, severity, uniqExact(finding_id) AS n FROM {self.db}.findings "
            "GROUP BY participant, rule, severity ORDER BY n DESC, participant, rule"
        )
        return [(str(p), str(r), str(s), int(n)) for p, r, s, n in rows]

    def finding_ids(self, participant: str | None = None) -> list[str]:
        where = f"WHERE participant = {quote(participant)}" if participant else ""
        rows = self.backend.rows(f"SELECT DISTINCT finding_id FROM {self.db}.findings {where} ORDER BY finding_id")
        return [str(r[0]) for r in rows]

    def finding_ids_between(
        self, participant: str, start: datetime, end: datetime, exclude_kinds: Iterable[str] = ()
    ) -> set[str]:
        """Ids of the participant's stored findings whose event time is in ``start``..``end`` (both included),
        leaving out the given finding kinds."""
        excluded = list(exclude_kinds)
        not_kind = f" AND kind NOT IN {in_list(excluded)}" if excluded else ""
        rows = self.backend.rows(
            f"SELECT DISTINCT finding_id FROM {self.db}.findings WHERE participant = {quote(participant)} "
            f"AND ts >= {datetime_literal(start)} AND ts <= {datetime_literal(end)}{not_kind}"
        )
        return {str(row[0]) for row in rows}

    def licence_versions(self, participant: str) -> list[tuple[str, str, str]]:
        """(body, path, sha256) of every licence version the monitor loaded for the participant, newest first."""
        rows = self.backend.rows(
            f"SELECT body, path, sha256 FROM {self.db}.licence_versions WHERE participant = {quote(participant)} "
            "ORDER BY loaded DESC"
        )
        return [(str(body), str(path), str(sha)) for body, path, sha in rows]

    def stored_events(
        self, participant: str, recorded_since: datetime | None = None, errors: list[EventError] | None = None
    ) -> list[EventRecord]:
        """Every stored event of a participant (or those stored since a moment), parsed again from the text
        it arrived as. One that today's parser refuses (stored before a bound existed) is never dropped
        silently: it goes to ``errors`` for the caller to report, or is logged."""
        since = f" AND recorded >= {datetime_literal(recorded_since)}" if recorded_since else ""
        rows = self.backend.rows(
            f"SELECT any(body), any(source) FROM {self.db}.events WHERE participant = {quote(participant)}{since} "
            "GROUP BY event_id"
        )
        records = []
        for body, source in rows:
            item = parse_json_line(str(body), str(source), 0)
            if not isinstance(item, EventError):
                records.append(EventRecord(item, str(body), str(source)))
            elif errors is not None:
                errors.append(item)
            else:
                log.warning("stored event of %s no longer parses: %s", participant, item.describe())
        return records

    def dead_letters(self) -> list[dict[str, Any]]:
        rows = self.backend.rows(
            f"SELECT letter_id, any(kind), any(source), any(participant), any(field), any(reason), any(raw) "
            f"FROM {self.db}.dead_letters GROUP BY letter_id ORDER BY letter_id"
        )
        names = ("letter_id", "kind", "source", "participant", "field", "reason", "raw")
        return [dict(zip(names, row, strict=True)) for row in rows]
