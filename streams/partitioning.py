"""Which partition of the events topic a participant's own events are on.

Producers key every event by its participant and use the Kafka default partitioner (murmur2 of the key),
so a worker can tell which participants a partition carries before it has read any of their events: after
a rebalance, the participants of partitions new to the worker are the ones it must take over."""

from __future__ import annotations


def home_partition(participant: str, partitions: int) -> int:
    from kafka.partitioner.default import murmur2

    hashed: int = murmur2(participant.encode())
    return (hashed & 0x7FFFFFFF) % partitions
