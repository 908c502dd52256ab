"""The offset-gap tracker: which messages a worker processes, which it drops, when it seeks back, and how each gap
is counted, against a real prometheus counter."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from sandboxwatch.alerts.metrics import OFFSET_GAPS_TOTAL, Metrics
from sandboxwatch.streams.offset_gaps import OffsetGaps, Verdict


def _gaps() -> tuple[OffsetGaps, CollectorRegistry]:
    metrics = Metrics()
    return OffsetGaps(metrics.offset_gaps), metrics.registry


def _count(registry: CollectorRegistry, partition: int, reason: str) -> float | None:
    return registry.get_sample_value(OFFSET_GAPS_TOTAL, {"partition": str(partition), "reason": reason})


def test_label_sets_of_owned_partitions_exist_at_zero() -> None:
    gaps, registry = _gaps()
    gaps.owned(frozenset({0, 2}), frozenset())
    for partition in (0, 2):
        assert _count(registry, partition, "recovered") == 0
        assert _count(registry, partition, "skipped_by_broker") == 0
    assert _count(registry, 1, "recovered") is None


def test_contiguous_offsets_from_the_committed_one_pass() -> None:
    gaps, registry = _gaps()
    gaps.resume(3, 10)
    assert [gaps.check(3, o) for o in (10, 11, 12)] == [Verdict(process=True)] * 3
    assert gaps.expected[3] == 13
    assert _count(registry, 3, "recovered") in (None, 0)


def test_no_commit_yet_accepts_the_first_offset() -> None:
    gaps, _ = _gaps()
    gaps.resume(0, None)
    assert gaps.check(0, 7) == Verdict(process=True)
    assert gaps.expected[0] == 8


def test_redelivered_offsets_pass_for_the_engine_to_skip() -> None:
    gaps, _ = _gaps()
    gaps.resume(0, 5)
    for offset in (5, 6, 7):
        gaps.check(0, offset)
    # A rebalance that kept the partition: faust seeks back to the committed offset and delivers 5.. again.
    gaps.owned(frozenset({0}), frozenset({0}))
    assert gaps.check(0, 5) == Verdict(process=True)
    assert gaps.check(0, 6) == Verdict(process=True)
    assert gaps.expected[0] == 8


def test_hole_is_sought_back_refilled_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    gaps, registry = _gaps()
    gaps.owned(frozenset({1}), frozenset())
    gaps.resume(1, 100)
    assert gaps.check(1, 100) == Verdict(process=True)
    with caplog.at_level(logging.ERROR, logger="sandboxwatch.streams.offset_gaps"):
        # 101..103 never came: 104 is dropped and the partition sought back to 101.
        assert gaps.check(1, 104) == Verdict(process=False, seek_to=101)
    assert "expected offset 101, got 104" in caplog.text
    # Messages fetched before the seek took effect are stale: dropped, and the seek repeated.
    assert gaps.check(1, 105) == Verdict(process=False, seek_to=101)
    assert _count(registry, 1, "recovered") == 0
    # The re-delivery starts at the expected offset: the hole is being refilled.
    assert [gaps.check(1, o) for o in (101, 102, 103, 104, 105, 106)] == [Verdict(process=True)] * 6
    assert _count(registry, 1, "recovered") == 1
    assert _count(registry, 1, "skipped_by_broker") == 0
    assert gaps.expected[1] == 107
    assert not gaps.pending


def test_broker_skip_is_accepted_after_one_seek_back() -> None:
    gaps, registry = _gaps()
    gaps.owned(frozenset({0}), frozenset())
    gaps.resume(0, 50)
    gaps.check(0, 50)
    # 51 and 52 are transaction markers: the broker never delivers them.
    assert gaps.check(0, 53) == Verdict(process=False, seek_to=51)
    assert gaps.check(0, 54) == Verdict(process=False, seek_to=51)
    # After the seek the partition starts again at 53, the offset that showed the gap: nothing was in between.
    assert gaps.check(0, 53) == Verdict(process=True)
    assert gaps.check(0, 54) == Verdict(process=True)
    assert _count(registry, 0, "skipped_by_broker") == 1
    assert _count(registry, 0, "recovered") == 0
    assert gaps.expected[0] == 55
    assert not gaps.pending


def test_resume_after_a_restore_expects_the_committed_offset() -> None:
    gaps, registry = _gaps()
    gaps.owned(frozenset({2}), frozenset())
    gaps.resume(2, 40)  # the snapshot covers 39, the commit is 40
    # The stream resumed past the commit (the hand-over hole): sought back to the commit.
    assert gaps.check(2, 45) == Verdict(process=False, seek_to=40)
    assert gaps.check(2, 40) == Verdict(process=True)
    assert _count(registry, 2, "recovered") == 1


def test_partition_not_kept_starts_over_and_kept_one_keeps_its_expectation() -> None:
    gaps, _ = _gaps()
    gaps.owned(frozenset({0, 1}), frozenset())
    gaps.resume(0, 10)
    gaps.resume(1, 20)
    gaps.check(0, 10)
    gaps.check(1, 20)
    gaps.check(1, 25)  # a pending seek on 1
    gaps.owned(frozenset({0, 1}), frozenset({0}))
    assert gaps.expected == {0: 11}
    assert not gaps.pending
    gaps.resume(0, 5)  # never moves a kept partition's expectation back
    assert gaps.expected[0] == 11
    gaps.resume(1, 30)
    assert gaps.check(1, 30) == Verdict(process=True)


def test_a_stale_copy_past_the_gap_is_no_proof_of_an_empty_hole() -> None:
    gaps, registry = _gaps()
    gaps.resume(0, 10)
    assert gaps.check(0, 13) == Verdict(process=False, seek_to=10)
    for offset in range(14, 40):
        assert gaps.check(0, offset) == Verdict(process=False, seek_to=10)
    # 39 again (fetched before the seek took effect, delivered twice): still dropped, sought back again.
    assert gaps.check(0, 39) == Verdict(process=False, seek_to=10)
    assert _count(registry, 0, "skipped_by_broker") in (None, 0)
    assert gaps.check(0, 10) == Verdict(process=True)
    assert _count(registry, 0, "recovered") == 1


def test_a_restart_inside_the_hole_accepts_the_markers_and_counts_the_rest_recovered() -> None:
    gaps, registry = _gaps()
    gaps.resume(0, 10)
    assert gaps.check(0, 15) == Verdict(process=False, seek_to=10)
    # 10..11 are markers, 12..14 were lost: the re-delivery starts at 12, a hole refilled.
    assert gaps.check(0, 12) == Verdict(process=True)
    assert _count(registry, 0, "recovered") == 1
    assert _count(registry, 0, "skipped_by_broker") in (None, 0)
    assert [gaps.check(0, o) for o in (13, 14, 15)] == [Verdict(process=True)] * 3


def test_a_seek_back_that_shows_nothing_is_due_again() -> None:
    gaps, _ = _gaps()
    gaps.resume(0, 10)
    gaps.resume(1, 0)
    assert gaps.check(0, 13) == Verdict(process=False, seek_to=10)
    since = gaps.pending[0].since
    assert gaps.overdue(5.0, now=since + 4.9) == {}
    assert gaps.overdue(5.0, now=since + 5.0) == {0: 10}
    assert gaps.overdue(5.0, now=since + 6.0) == {}, "the clock restarts at each seek"
    assert gaps.check(0, 10) == Verdict(process=True)
    assert gaps.overdue(5.0, now=since + 60.0) == {}
