"""Offset gaps in an owned events partition: a message beyond the next expected offset means the ones in between
never reached the monitor (faust once dropped them from its stream buffer after a hand-over; faust also acks
messages it skips on its own). A hole is never silent: the stream is sought back to the expected offset so the
missing messages are delivered again (those seen twice are skipped by the engine's event-id memory), and every gap
is counted and logged.

Kafka offsets may also skip legitimately (transaction control records of other producers). After a seek back, the
first message the partition re-delivers tells which: the expected offset itself means the hole is being refilled
(reason ``recovered``); a higher one, up to the offset that showed the gap, means nothing lies in between (reason
``skipped_by_broker``; ``recovered`` if it comes before that offset: the rest of the hole is being refilled),
and it is accepted. Until then, messages beyond the expected offset are stale (fetched before the seek): they are
dropped without being processed or acknowledged, and will come again. Pure bookkeeping: the caller does the seeks."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)

REASONS = ("recovered", "skipped_by_broker")


class _Child(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class GapCounter(Protocol):
    def labels(self, *values: str) -> _Child: ...


@dataclass
class _Pending:
    """A seek back in progress: the expected offset it went back to, and the offset that showed the gap."""

    expected: int
    got: int
    since: float = field(default_factory=time.monotonic)


@dataclass
class Verdict:
    """What to do with one message: process it or drop it, and whether to seek its partition back first."""

    process: bool
    seek_to: int | None = None


@dataclass
class OffsetGaps:
    """Per owned partition, the next offset expected; ``check`` judges each message before it is processed."""

    counter: GapCounter
    expected: dict[int, int] = field(default_factory=dict)
    pending: dict[int, _Pending] = field(default_factory=dict)

    def owned(self, partitions: frozenset[int], kept: frozenset[int]) -> None:
        """After a rebalance: a partition not kept starts over (``resume``); every owned one shows at 0."""
        for partition in list(self.expected):
            if partition not in kept:
                del self.expected[partition]
        for partition in list(self.pending):
            if partition not in kept:
                del self.pending[partition]
        for partition in partitions:
            for reason in REASONS:
                self.counter.labels(str(partition), reason)

    def resume(self, partition: int, offset: int | None) -> None:
        """Where a (re)assigned partition must resume: the committed offset (None before any commit: whatever
        comes first is accepted). Never moves an expectation backwards."""
        if offset is not None and partition not in self.expected:
            self.expected[partition] = offset

    def known(self, partition: int) -> bool:
        return partition in self.expected

    def check(self, partition: int, offset: int) -> Verdict:
        expected = self.expected.get(partition)
        pending = self.pending.get(partition)
        if expected is None or offset <= expected - 1:
            # First message of a partition with no commit yet, or one seen before (re-delivered): the engine
            # skips the events it already has.
            if expected is None:
                self.expected[partition] = offset + 1
            return Verdict(process=True)
        if offset == expected:
            if pending is not None:
                del self.pending[partition]
                self._count(partition, "recovered", expected, pending.got)
            self.expected[partition] = offset + 1
            return Verdict(process=True)
        if pending is None:
            log.error(
                "offset gap on events partition %d: expected offset %d, got %d; seeking back to %d",
                partition,
                expected,
                offset,
                expected,
            )
            self.pending[partition] = _Pending(expected, offset)
            return Verdict(process=False, seek_to=expected)
        if offset <= pending.got:
            # The partition started over after the seek, past the expected offset but not past the one that
            # showed the gap: nothing lies before it (control records), so it is accepted; if it comes before the
            # one that showed the gap, the messages from it on were a hole, now refilled. A higher offset may be
            # a stale copy delivered again, never proof of an empty hole.
            del self.pending[partition]
            self._count(partition, "skipped_by_broker" if offset == pending.got else "recovered", expected, offset)
            self.expected[partition] = offset + 1
            return Verdict(process=True)
        # Still fetched before the seek took effect (or faust read past it): dropped, and sought back again so
        # that a seek overtaken by messages already in flight is not lost.
        return Verdict(process=False, seek_to=expected)

    def overdue(self, seconds: float, now: float | None = None) -> dict[int, int]:
        """Partition -> offset to seek to again, for seeks back that have shown nothing for ``seconds``: faust
        drops what it fetches below the last offset it read, so a seek overtaken by stale messages on a partition
        that then goes quiet would wait for the next message; sought again, it is not left waiting."""
        now = time.monotonic() if now is None else now
        due: dict[int, int] = {}
        for partition, pending in self.pending.items():
            if now - pending.since >= seconds:
                pending.since = now
                due[partition] = pending.expected
        return due

    def _count(self, partition: int, reason: str, expected: int, got: int) -> None:
        self.counter.labels(str(partition), reason).inc()
        level = logging.WARNING if reason == "skipped_by_broker" else logging.ERROR
        log.log(
            level,
            "offset gap on events partition %d (expected %d, got %d): %s",
            partition,
            expected,
            got,
            "the broker had nothing in between" if reason == "skipped_by_broker" else "re-delivered after a seek back",
        )
