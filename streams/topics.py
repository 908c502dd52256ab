"""Topic names and their explicit creation (brokers such as tansu do not auto-create topics)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from sandboxwatch.streams.kafka_security import KafkaSecurity
from sandboxwatch.streams.message_limits import MAX_EVENT_MESSAGE_BYTES, MAX_OUTPUT_MESSAGE_BYTES

APP_ID = "sandboxwatch-monitor"
STATE_TABLE = "engine-state"


@dataclass(frozen=True, slots=True)
class Topics:
    events: str = "sandboxwatch.events"
    findings: str = "sandboxwatch.findings"
    dead_letters: str = "sandboxwatch.deadletter"
    partitions: int = 4
    app_id: str = APP_ID

    @property
    def changelog(self) -> str:
        """Faust's name for the state table's changelog; it must be co-partitioned with the events."""
        return f"{self.app_id}-{STATE_TABLE}-changelog"


def ensure_topics(bootstrap: str, topics: Topics, timeout: float = 30.0) -> None:
    """Create missing topics; the changelog is compacted so a restart reads only the latest snapshot. Each
    admits the largest message the monitor may produce or accept (streams.message_limits)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap, client_id="sandboxwatch-admin", **KafkaSecurity.from_env().kafka_python()
            )
            break
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        events = {"max.message.bytes": str(MAX_EVENT_MESSAGE_BYTES)}
        output = {"max.message.bytes": str(MAX_OUTPUT_MESSAGE_BYTES)}
        wanted = {
            topics.events: events,
            topics.findings: output,
            topics.dead_letters: output,
            topics.changelog: {"cleanup.policy": "compact", **output},
        }
        existing = set(admin.list_topics())
        for name, config in wanted.items():
            if name in existing:
                continue
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(name, topics.partitions, 1, topic_configs=config)])
    finally:
        admin.close()
