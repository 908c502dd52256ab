"""What a stream worker needs to know, from the command line or the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sandboxwatch.streams.topics import Topics

# The default of buffer_bytes: about 200k events of a few hundred bytes, several batches of the monitor's,
# and a small share of a worker's memory request (deploy/OPERATIONS.md, "Sizing"). Here, not beside the
# queue it bounds, so that the command line can show it without importing the stream framework.
DEFAULT_BUFFER_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    kafka: str
    store_url: str
    licences: tuple[Path, ...]
    topics: Topics = field(default_factory=Topics)
    batch_size: int = 5000
    batch_wait: float = 0.1
    # A snapshot at most this often while busy, and never more often than its own cost allows (see app).
    snapshot_seconds: float = 10.0
    # Once the stream has been quiet this long, snapshot, so a caught-up worker's committed offset is current.
    idle_snapshot_seconds: float = 2.0
    # After this long without an event for a participant, judge what its reorder buffer holds (lateness:
    # docs/licence.md); the watermark moves with event time only, so a quiet participant would wait forever.
    idle_flush_seconds: float = 10.0
    # How long the broker may hold an empty fetch (faust's own default is 1.5 s; see streams.fetch_wait).
    fetch_max_wait: float = 1.5
    # Bytes of fetched messages the worker may hold before the monitor takes them, besides faust's count of
    # 4 x batch_size messages: a message may be a 512 KiB batch (streams.inbound_buffer).
    buffer_bytes: int = DEFAULT_BUFFER_BYTES
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    web_port: int = 6066
    data_dir: Path = Path(".sandboxwatch/faust")
    # The worker's static group-instance id (streams.static_membership); None joins as a dynamic member.
    worker_id: str | None = None
