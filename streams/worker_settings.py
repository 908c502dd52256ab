"""What a stream worker needs to know, from the command line or the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streams.topics import Topics


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    kafka: str
    store_url: str
    licences: tuple[Path, ...]
    topics: Topics = field(default_factory=Topics)
    batch_size: int = 5000
    batch_wait: float = 0.1
    snapshot_seconds: float = 10.0
    idle_snapshot_seconds: float = 2.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    web_port: int = 6066
    data_dir: Path = Path(".sandboxwatch/faust")
