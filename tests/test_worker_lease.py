"""The --worker-id lease (streams/worker_lease.py): who keeps an id, who yields, and how long a newcomer waits.

The rules are checked on a store whose clock the test moves (``_ClockedStore``: claims and ages read on one
clock, as the server's ``now()`` gives them); the SQL is checked on the embedded store, with its own clock."""

from __future__ import annotations

import logging
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
    """The lease table as the server keeps it, with ``now()`` the test's clock (whole seconds, as a DateTime
    column holds them); ``on_read`` lets another process beat while the one under test waits."""

    clock: _Clock
    rows: dict[str, tuple[LeaseBeat, int, int]] = field(default_factory=dict)  # beat, first, last renewed
    on_read: list[object] = field(default_factory=list)

    def write_lease_beat(self, beat: LeaseBeat) -> None:
        now = int(self.clock())
        first = self.rows[beat.nonce][1] if beat.nonce in self.rows else now
        self.rows[beat.nonce] = (beat, first, now)

    def lease_holders(self, worker_id: str) -> list[LeaseHolder]:
        for hook in self.on_read:
            hook()  # type: ignore[operator]
        now = int(self.clock())
        return [
            LeaseHolder(b.nonce, first, b.beat, b.host, b.pid, b.holding, b.released, now - last)
            for b, first, last in self.rows.values()
            if b.worker_id == worker_id
        ]


def _lease(store: _ClockedStore, clock: _Clock, nonce: str, worker_id: str = "w1") -> WorkerIdLease:
    return WorkerIdLease(store, worker_id, TIMING, nonce=nonce, clock=clock, sleep=clock.sleep)


def _holder_beats_every(store: _ClockedStore, lease: WorkerIdLease, clock: _Clock) -> None:
    """The live holder: it renews whenever a beat interval has passed since its last write."""
    last = {"at": clock()}

    def hook() -> None:
        if clock() - last["at"] >= TIMING.beat_seconds:
            last["at"] = clock()
            lease.renew()

    store.on_read.append(hook)


SETTLE = TIMING.settle_seconds


def test_an_unclaimed_id_is_taken_after_the_settle_wait() -> None:
    clock = _Clock()
    store = _ClockedStore(clock)
    _lease(store, clock, "b").acquire()
    assert clock.now == 1000.0 + SETTLE
    [held] = store.lease_holders("w1")
    assert (held.nonce, held.claimed, held.holding) == ("b", 1000, True)


def test_a_newcomer_under_a_live_holder_exits_after_one_ttl_naming_the_holder() -> None:
    clock = _Clock()
    store = _ClockedStore(clock)
    holder = _lease(store, clock, "z")  # its nonce sorts last: only the claim order puts it first
    holder.acquire()
    _holder_beats_every(store, holder, clock)
    started = clock.now
    newcomer = _lease(store, clock, "a")
    with pytest.raises(WorkerIdTaken) as taken:
        newcomer.acquire()
    assert TIMING.ttl_seconds <= clock.now - started <= SETTLE + TIMING.ttl_seconds + TIMING.beat_seconds + 1
    message = str(taken.value)
    assert "--worker-id w1 is held by a live worker" in message and f"pid {holder.pid}" in message
    assert "\n" not in message
    # It released its claim on the way out: the holder no longer counts it as a rival.
    store.on_read.clear()
    assert holder.renew() == []


def test_a_restart_after_kill_9_waits_for_the_dead_lease_to_lapse_and_no_longer() -> None:
    clock = _Clock()
    store = _ClockedStore(clock)
    _lease(store, clock, "a").acquire()  # then killed: it never beats again
    last_beat = clock.now
    clock.now += 4
    _lease(store, clock, "b").acquire()
    # The dead lease lapses once its last beat is older than the TTL on the server's clock.
    assert clock.now - last_beat == pytest.approx(TIMING.ttl_seconds + 1, abs=1)


def test_a_restart_after_an_orderly_stop_does_not_wait() -> None:
    clock = _Clock()
    store = _ClockedStore(clock)
    first = _lease(store, clock, "a")
    first.acquire()
    first.release()
    started = clock.now
    _lease(store, clock, "b").acquire()
    assert clock.now == started + SETTLE


def test_two_whose_first_beats_land_within_the_settle_wait_agree_the_first_claim_keeps_the_id() -> None:
    clock = _Clock()
    store = _ClockedStore(clock)
    first, second = _lease(store, clock, "z"), _lease(store, clock, "a")
    first._write()  # claims second 1000
    clock.now += 1
    second._write()  # claims second 1001, though its nonce sorts first
    clock.now += SETTLE
    assert [r.nonce for r in first.renew()] == ["a"]  # the first claim sees the later one and keeps going
    with pytest.raises(WorkerIdTaken):
        second.renew()
    # Claims within one second: the nonce breaks the tie, the same way on both sides.
    tie_a, tie_b = _lease(store, clock, "x", "w2"), _lease(store, clock, "y", "w2")
    tie_a._write()
    tie_b._write()
    tie_a.renew()
    with pytest.raises(WorkerIdTaken):
        tie_b.renew()


def test_a_first_beat_landing_after_the_holders_settled_read_ranks_after_it() -> None:
    """The holder wrote, waited and read (nobody there): anyone writing now claims a later second."""
    clock = _Clock()
    store = _ClockedStore(clock)
    holder = _lease(store, clock, "z")
    holder.acquire()
    _holder_beats_every(store, holder, clock)
    with pytest.raises(WorkerIdTaken):
        _lease(store, clock, "a").acquire()


def test_a_worker_ids_lease_is_its_own() -> None:
    clock = _Clock()
    store = _ClockedStore(clock)
    _lease(store, clock, "a", "w1").acquire()
    _lease(store, clock, "b", "w2").acquire()
    assert clock.now == 1000.0 + 2 * SETTLE


def test_a_holder_back_from_a_lapse_stops_if_a_newcomer_took_the_id_over_without_renewing() -> None:
    """The store unreachable (or the process paused) for longer than the TTL: a newcomer took the id. The old
    holder, back, reads before it writes and stops; it writes nothing that would make the newcomer (ranked
    after it) yield too."""
    clock = _Clock()
    store = _ClockedStore(clock)
    old = _lease(store, clock, "a")
    old.acquire()
    clock.now += 30  # no beat gets through
    newcomer = _lease(store, clock, "b")
    started = clock.now
    newcomer.acquire()
    assert clock.now == started + SETTLE  # the lapsed lease did not hold it up
    beats = store.rows["a"][0].beat
    with pytest.raises(WorkerIdTaken, match=r"lease lapsed .* took the id over"):
        old.renew()
    assert store.rows["a"][0].beat == beats, "the lapsed holder renewed before stopping"
    assert newcomer.renew() == []


def test_a_holder_back_from_a_lapse_nobody_took_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    store = _ClockedStore(clock)
    holder = _lease(store, clock, "a")
    holder.acquire()
    clock.now += 30
    caplog.set_level(logging.WARNING, logger="sandboxwatch.streams.worker_lease")
    assert holder.renew() == []
    assert any("renewed again after a 30 s lapse; no worker took it over" in r.getMessage() for r in caplog.records)


def test_lease_rows_round_trip_on_the_embedded_store(store: Store) -> None:
    store.write_lease_beat(LeaseBeat("w1", "n1", 0, 1, "h1", 11))
    [first] = store.lease_holders("w1")
    store.write_lease_beat(LeaseBeat("w1", "n1", first.claimed, 2, "h1", 11, holding=True))
    store.write_lease_beat(LeaseBeat("w1", "n2", 0, 1, "h2", 22))
    store.write_lease_beat(LeaseBeat("w1", "n2", 5, 2, "h2", 22, released=True))
    store.write_lease_beat(LeaseBeat("w2", "n3", 0, 1, "h3", 33))
    found = store.lease_holders("w1")
    assert [(h.nonce, h.beat, h.host, h.pid, h.holding, h.released) for h in found] == [
        ("n1", 2, "h1", 11, True, False),
        ("n2", 2, "h2", 22, False, True),
    ]
    assert found[0].claimed == first.claimed > 1_700_000_000  # the server's clock, kept from the first beat
    assert found[1].claimed == 5  # a claim carried by a later beat wins over the first beat's own time
    assert all(0 <= h.age_seconds <= 2 for h in found)
    assert store.lease_holders("w'1") == []  # quoted, never a syntax error
    lease = WorkerIdLease(store, "w2", TIMING, nonce="n4", sleep=lambda _s: None)
    with pytest.raises(WorkerIdTaken, match="host h3, pid 33"):
        lease.renew()
