"""The --worker-id lease (streams/worker_lease.py): who keeps an id, who yields, and how long a newcomer waits.

The rules are checked on a store whose clock the test moves (``_ClockedStore``: ages read on one clock, as
the server's ``now()`` gives them); the SQL is checked on the embedded store, with the server's own clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.worker_leases import LeaseBeat, LeaseHolder
from sandboxwatch.streams.worker_lease import LeaseTiming, WorkerIdLease, WorkerIdTaken

TIMING = LeaseTiming(beat_seconds=5.0, ttl_seconds=15)


@dataclass
class _Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class _ClockedStore:
    """The lease table as the server keeps it, with ``now()`` the test's clock; ``on_read`` lets another
    process beat while the one under test waits."""

    clock: _Clock
    rows: dict[str, tuple[LeaseBeat, float]] = field(default_factory=dict)
    on_read: list[object] = field(default_factory=list)

    def write_lease_beat(self, beat: LeaseBeat) -> None:
        self.rows[beat.nonce] = (beat, self.clock())

    def lease_holders(self, worker_id: str) -> list[LeaseHolder]:
        for hook in self.on_read:
            hook()  # type: ignore[operator]
        return [
            LeaseHolder(b.nonce, b.started_ns, b.beat, b.host, b.pid, b.released, int(self.clock() - at))
            for b, at in self.rows.values()
            if b.worker_id == worker_id
        ]


def _lease(store: _ClockedStore, clock: _Clock, nonce: str, started_ns: int, worker_id: str = "w1") -> WorkerIdLease:
    return WorkerIdLease(store, worker_id, TIMING, nonce=nonce, started_ns=started_ns, clock=clock, sleep=clock.sleep)


def _holder_beats_every(store: _ClockedStore, lease: WorkerIdLease, clock: _Clock) -> None:
    """The live holder: it renews whenever a beat interval has passed since its last write."""
    last = {"at": clock()}

    def hook() -> None:
        if clock() - last["at"] >= TIMING.beat_seconds:
            last["at"] = clock()
            lease.renew()

    store.on_read.append(hook)


def test_an_unclaimed_id_is_taken_at_once() -> None:
    clock = _Clock()
    store = _ClockedStore(clock)
    _lease(store, clock, "b", 2).acquire()
    assert clock.now == 1000.0
    assert [h.nonce for h in store.lease_holders("w1")] == ["b"]


def test_a_newcomer_under_a_live_holder_exits_after_one_ttl_naming_the_holder() -> None:
    clock = _Clock()
    store = _ClockedStore(clock)
    holder = _lease(store, clock, "a", 1)
    holder.acquire()
    _holder_beats_every(store, holder, clock)
    newcomer = _lease(store, clock, "b", 2)
    with pytest.raises(WorkerIdTaken) as taken:
        newcomer.acquire()
    assert TIMING.ttl_seconds <= clock.now - 1000.0 <= TIMING.ttl_seconds + TIMING.beat_seconds + 1
    message = str(taken.value)
    assert "--worker-id w1 is held by a live worker" in message and f"pid {holder.pid}" in message
    assert "\n" not in message
    # It released its claim on the way out: the holder no longer counts it as a rival.
    store.on_read.clear()
    assert holder.renew() == []


def test_a_restart_after_kill_9_waits_for_the_dead_lease_to_lapse_and_no_longer() -> None:
    clock = _Clock()
    store = _ClockedStore(clock)
    _lease(store, clock, "a", 1).acquire()  # then killed: it never beats again
    clock.now += 4
    _lease(store, clock, "b", 2).acquire()
    # The dead lease's last beat was 4 s old; it lapses once older than the TTL.
    assert clock.now - 1000.0 == pytest.approx(TIMING.ttl_seconds + 1, abs=1)


def test_a_restart_after_an_orderly_stop_does_not_wait() -> None:
    clock = _Clock()
    store = _ClockedStore(clock)
    first = _lease(store, clock, "a", 1)
    first.acquire()
    first.release()
    _lease(store, clock, "b", 2).acquire()
    assert clock.now == 1000.0


def test_of_two_started_together_the_newer_yields_and_the_older_keeps_the_id() -> None:
    clock = _Clock()
    store = _ClockedStore(clock)
    older = _lease(store, clock, "a", 1)
    newer = _lease(store, clock, "b", 2)
    # Both wrote their first beat before either read (the race a first read cannot settle).
    older._write()
    newer._write()
    assert older.renew()[0].nonce == "b"  # the older sees the newer as a rival and keeps going
    with pytest.raises(WorkerIdTaken):
        newer.renew()
    # Same start time: the nonce breaks the tie, the same way on both sides.
    tie_a, tie_b = _lease(store, clock, "x", 5, "w2"), _lease(store, clock, "y", 5, "w2")
    tie_a._write()
    tie_b._write()
    tie_a.renew()
    with pytest.raises(WorkerIdTaken):
        tie_b.renew()


def test_a_worker_ids_lease_is_its_own() -> None:
    clock = _Clock()
    store = _ClockedStore(clock)
    _lease(store, clock, "a", 1, "w1").acquire()
    _lease(store, clock, "b", 2, "w2").acquire()
    assert clock.now == 1000.0


def test_a_holder_whose_lease_lapsed_yields_to_nobody_newer_but_to_an_older_live_one() -> None:
    """The store unreachable for longer than the TTL: a newcomer took the id meanwhile. When the old holder's
    beats get through again, the rank decides: the newcomer (newer) stops at its next beat."""
    clock = _Clock()
    store = _ClockedStore(clock)
    old = _lease(store, clock, "a", 1)
    old.acquire()
    clock.now += 30  # no beat gets through
    newcomer = _lease(store, clock, "b", 2)
    newcomer.acquire()
    assert clock.now == 1030.0  # the lapsed lease did not hold it up
    assert [r.nonce for r in old.renew()] == ["b"]
    with pytest.raises(WorkerIdTaken):
        newcomer.renew()


def test_lease_rows_round_trip_on_the_embedded_store(store: Store) -> None:
    store.write_lease_beat(LeaseBeat("w1", "n1", 10, 1, "h1", 11))
    store.write_lease_beat(LeaseBeat("w1", "n1", 10, 2, "h1", 11))
    store.write_lease_beat(LeaseBeat("w1", "n2", 20, 1, "h2", 22))
    store.write_lease_beat(LeaseBeat("w1", "n2", 20, 2, "h2", 22, released=True))
    store.write_lease_beat(LeaseBeat("w2", "n3", 30, 1, "h3", 33))
    found = store.lease_holders("w1")
    assert [(h.nonce, h.started_ns, h.beat, h.host, h.pid, h.released) for h in found] == [
        ("n1", 10, 2, "h1", 11, False),
        ("n2", 20, 2, "h2", 22, True),
    ]
    assert all(0 <= h.age_seconds <= 2 for h in found)
    assert store.lease_holders("w'1") == []  # quoted, never a syntax error
    lease = WorkerIdLease(store, "w2", TIMING, nonce="n4", started_ns=40)
    with pytest.raises(WorkerIdTaken, match="host h3, pid 33"):
        lease.renew()
