#!/usr/bin/env bash
# Creates sandboxwatch's topics on a fresh cluster (auto-creation is off): events keyed by participant,
# findings and dead letters (30 days in Kafka; ClickHouse is the long-term record), and the compacted
# changelog of the workers' state table, co-partitioned with the events.
set -euo pipefail
topics=/opt/kafka/bin/kafka-topics.sh
create() {
  "$topics" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$1" \
    --partitions "$PARTITIONS" --replication-factor "${REPLICATION:-1}" "${@:2}"
}
create sandboxwatch.events --config retention.ms=2592000000
create sandboxwatch.findings --config retention.ms=2592000000
create sandboxwatch.deadletter --config retention.ms=2592000000
create sandboxwatch-monitor-engine-state-changelog --config cleanup.policy=compact
