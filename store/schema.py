"""Tables and their migrations.

Every table is a ReplacingMergeTree ordered by its natural id, so a row written twice (at-least-once
delivery, a replayed batch) collapses to one; the writer also skips ids already present, so counts are
exact before any merge. Money and amounts stay decimal strings: ``Decimal`` columns differ between server
versions and a string never rounds. Only SQL accepted by ClickHouse 18.16 and current releases is used:
no DateTime64, TTL, JSON functions or query parameters.

The statements below are the single-node schema and run as written. A store on a cluster runs their cluster
form instead (``store/cluster.py``: Replicated tables behind Distributed ones), derived from the same text."""

from __future__ import annotations

from dataclasses import dataclass

from sandboxwatch.store.cluster import cluster_statements, database_statement


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "events, findings, dead letters, licence versions",
        (
            """CREATE TABLE IF NOT EXISTS {db}.events (
                participant String,
                event_id String,
                type String,
                ts DateTime('UTC'),
                ts_text String,
                account String,
                body String,
                source String,
                recorded DateTime('UTC')
            ) ENGINE = ReplacingMergeTree()
            PARTITION BY toYYYYMM(ts)
            ORDER BY (participant, event_id)""",
            """CREATE TABLE IF NOT EXISTS {db}.findings (
                finding_id String,
                licence String,
                rule String,
                kind String,
                severity String,
                participant String,
                subject String,
                ts DateTime('UTC'),
                ts_text String,
                observed Nullable(String),
                limit_value Nullable(String),
                clause String,
                evidence Array(String),
                message String,
                recorded DateTime('UTC')
            ) ENGINE = ReplacingMergeTree()
            PARTITION BY toYYYYMM(ts)
            ORDER BY (participant, finding_id)""",
            """CREATE TABLE IF NOT EXISTS {db}.dead_letters (
                letter_id String,
                kind String,
                source String,
                participant String,
                field String,
                reason String,
                raw String,
                recorded DateTime('UTC')
            ) ENGINE = ReplacingMergeTree()
            ORDER BY letter_id""",
            """CREATE TABLE IF NOT EXISTS {db}.licence_versions (
                licence_id String,
                participant String,
                sha256 String,
                path String,
                body String,
                loaded DateTime('UTC')
            ) ENGINE = ReplacingMergeTree()
            ORDER BY (licence_id, sha256)""",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        2,
        "alert notifications recorded from Alertmanager",
        (
            """CREATE TABLE IF NOT EXISTS {db}.alert_notifications (
                notification_id String,
                receiver String,
                status String,
                alert_status String,
                alertname String,
                participant String,
                severity String,
                rule String,
                fingerprint String,
                starts_at String,
                ends_at String,
                group_key String,
                received DateTime('UTC'),
                alert String
            ) ENGINE = ReplacingMergeTree()
            PARTITION BY toYYYYMM(received)
            ORDER BY (participant, received, notification_id)""",
        ),
    ),
)

MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
    version UInt32,
    name String,
    applied DateTime('UTC')
) ENGINE = ReplacingMergeTree()
ORDER BY version"""

MIGRATIONS += (
    Migration(
        3,
        "tamper-evident findings trail, denied API accesses, regulator notes on findings",
        (
            """CREATE TABLE IF NOT EXISTS {db}.finding_trail (
                participant String,
                seq UInt64,
                finding_id String,
                finding_digest String,
                prev_hash String,
                entry_hash String,
                recorded DateTime('UTC')
            ) ENGINE = ReplacingMergeTree()
            ORDER BY (participant, seq)""",
            """CREATE TABLE IF NOT EXISTS {db}.access_denials (
                at DateTime('UTC'),
                key_name String,
                role String,
                participant String,
                method String,
                path String,
                status UInt16,
                reason String
            ) ENGINE = MergeTree()
            PARTITION BY toYYYYMM(at)
            ORDER BY at""",
            """CREATE TABLE IF NOT EXISTS {db}.finding_notes (
                note_id String,
                finding_id String,
                participant String,
                author String,
                status String,
                note String,
                created DateTime('UTC')
            ) ENGINE = ReplacingMergeTree()
            ORDER BY (participant, finding_id, note_id)""",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        4,
        "findings trail v2: digest version per entry (every finding column covered), recorded chain heads",
        (
            # Entries written before keep version 1 and verify under the rule they were written with.
            "ALTER TABLE {db}.finding_trail ADD COLUMN digest_version UInt8 DEFAULT 1",
            # Insert-only: every head the monitor reached, so a trail cut short is caught without outside heads.
            """CREATE TABLE IF NOT EXISTS {db}.finding_trail_heads (
                participant String,
                seq UInt64,
                entry_hash String,
                recorded DateTime('UTC')
            ) ENGINE = MergeTree()
            ORDER BY (participant, seq)""",
        ),
    ),
)


MIGRATIONS += (
    Migration(
        5,
        "case workflow on findings: hash-chained case transitions and their recorded chain heads",
        (
            # Plain MergeTree: append-only, and two rows at one position are both kept for verify to report.
            """CREATE TABLE IF NOT EXISTS {db}.case_transitions (
                participant String,
                seq UInt64,
                finding_id String,
                action String,
                from_state String,
                to_state String,
                resolution String,
                reason String,
                assignee String,
                note String,
                actor String,
                actor_role String,
                at DateTime('UTC'),
                prev_hash String,
                entry_hash String
            ) ENGINE = MergeTree()
            ORDER BY (participant, seq)""",
            """CREATE TABLE IF NOT EXISTS {db}.case_trail_heads (
                participant String,
                seq UInt64,
                entry_hash String,
                recorded DateTime('UTC')
            ) ENGINE = MergeTree()
            ORDER BY (participant, seq)""",
        ),
    ),
)


MIGRATIONS += (
    Migration(
        6,
        "worker-id leases: which live process holds each --worker-id",
        (
            # One row per process (nonce); its beats replace it. ``renewed`` is the server's clock, so the
            # age of a lease is read on one clock whichever host wrote it; ``claimed`` is the server time of
            # the process's first beat (0 in that beat itself), its rank (streams/worker_lease.py).
            """CREATE TABLE IF NOT EXISTS {db}.worker_leases (
                worker_id String,
                nonce String,
                claimed DateTime('UTC'),
                beat UInt64,
                holding UInt8,
                released UInt8,
                host String,
                pid UInt32,
                renewed DateTime('UTC')
            ) ENGINE = ReplacingMergeTree()
            ORDER BY (worker_id, nonce)""",
        ),
    ),
)


def bootstrap_statements(db: str, cluster: str | None) -> tuple[str, ...]:
    """The database and the migrations table, before any migration can be looked up."""
    if cluster is None:
        return (f"CREATE DATABASE IF NOT EXISTS {db}", MIGRATIONS_TABLE.format(db=db))
    return (database_statement(db, cluster), *cluster_statements(MIGRATIONS_TABLE.format(db=db), cluster))


def migration_statements(migration: Migration, db: str, cluster: str | None) -> tuple[str, ...]:
    rendered = [statement.format(db=db) for statement in migration.statements]
    if cluster is None:
        return tuple(rendered)
    creates = _creates(db)
    return tuple(part for statement in rendered for part in cluster_statements(statement, cluster, creates))


def _creates(db: str) -> dict[str, str]:
    """Table name -> the migration statement that created it, for cluster forms that rebuild a table."""
    found: dict[str, str] = {}
    for migration in MIGRATIONS:
        for statement in migration.statements:
            text = statement.format(db=db).strip()
            prefix = f"CREATE TABLE IF NOT EXISTS {db}."
            if text.startswith(prefix):
                found[text[len(prefix) :].split(None, 1)[0].split("(")[0]] = text
    return found
