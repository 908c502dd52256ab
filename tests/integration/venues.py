"""Several licensed venues on one events topic, one per partition, for scale-out tests and benches.

Events are keyed by participant, so one venue's events all land on one partition: spreading work over
workers needs venues whose keys hash onto different partitions. Each venue gets a copy of the Da Nang
licence under its own participant and id, and a copy of one simulated day under its own event ids."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sandboxwatch.streams.partitioning import home_partition
from tests.helpers import DA_NANG

_PARTICIPANT = "alphatrue-basal-pay"
_LICENCE_ID = "DN-136-PILOT-01"


def partition_of(key: str, partitions: int) -> int:
    """The partition the Kafka producers' default partitioner (murmur2) puts a key on."""
    return home_partition(key, partitions)


def venue_names(partitions: int) -> list[str]:
    """One participant name per partition, so every partition carries one venue's events."""
    chosen: dict[int, str] = {}
    index = 0
    while len(chosen) < partitions:
        name = f"venue-{index}"
        chosen.setdefault(partition_of(name, partitions), name)
        index += 1
    return [chosen[p] for p in range(partitions)]


@dataclass(frozen=True)
class Venue:
    participant: str
    licence: Path
    events: Path


def write_venues(folder: Path, day: list[str], partitions: int) -> list[Venue]:
    """A licence and an events file per venue; ``day`` is a simulated Da Nang day (JSONL lines)."""
    template = DA_NANG.read_text(encoding="utf-8")
    assert template.count(_PARTICIPANT) == 1 and template.count(_LICENCE_ID) == 1
    venues = []
    for number, name in enumerate(venue_names(partitions)):
        licence = folder / f"{name}.yaml"
        licence.write_text(template.replace(_PARTICIPANT, name).replace(_LICENCE_ID, f"DN-SCALE-{number:02d}"))
        events = folder / f"{name}.jsonl"
        with events.open("w", encoding="utf-8") as out:
            for line in day:
                row = json.loads(line)
                row["participant"] = name
                row["event_id"] = f"{name}:{row['event_id']}"
                out.write(json.dumps(row, separators=(",", ":")) + "\n")
        venues.append(Venue(name, licence, events))
    return venues


def interleaved(venues: list[Venue]) -> list[str]:
    """Every venue's lines, one of each in turn: all partitions fill at the same pace."""
    files = [v.events.read_text(encoding="utf-8").splitlines() for v in venues]
    return [line for group in zip(*files, strict=True) for line in group]
