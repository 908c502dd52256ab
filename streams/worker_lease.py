"""One live process per ``--worker-id``: a lease in the store, renewed by the process that holds it.

Why: a static member's id is its identity in the consumer group, and two live workers under one id must never
both consume. Apache Kafka fences the older one (FENCED_INSTANCE_ID), but tansu and noida-db 0.2.3 fence
neither: both workers read ready, both store every event (seen: 40,362 raw rows for 31,968 events). Nothing in
a broker-agnostic worker would notice, so the worker holds a lease of its own.

The lease is a row per process (a random nonce) in the store's ``worker_leases`` table, rewritten every
``beat_seconds`` (store/worker_leases.py). Every time is the store server's: a lease is live while its last
beat is at most ``ttl_seconds`` old there and it was not released by an orderly stop, and processes are ranked
by the server time of their first beat (the nonce breaking ties within a second): the first to claim keeps the
id, later ones yield. No worker's own clock takes part, so a host whose clock is off cannot jump the queue.

- Starting: the worker writes its first beat, waits ``settle_seconds`` and only then reads the id's holders.
  Two processes whose first beats land within that wait both see each other and agree on the rank; one whose
  first beat lands later claimed a later second and ranks after. While a live process ranked before it exists
  the newcomer keeps beating and waits, for at most one TTL and a beat: a process killed with kill -9 stops
  beating and its lease lapses within the TTL (a restart after kill -9 waits that long), one stopped with
  SIGTERM released it (a restart goes on at once). If the holder still renews at the end, the newcomer exits
  2 in one line naming it, before it ever joins the consumer group.
- Running: each beat also reads the holders. A live process ranked before this one makes it yield (stop, exit
  2). Later ones are counted (``sandboxwatch_worker_id_rivals``, ``..._rivals_seen_total``): they stop
  themselves, and SandboxwatchWorkerIdShared says one tried.
- A lapse: a worker that could not renew for longer than the TTL (the store unreachable, the process paused)
  may have lost the id to a newcomer that found the lease dead. Back, it reads before it writes: if a process
  now holds the id, it stops at once (exit 2), without renewing (a renewal would make the newcomer, ranked
  after it, yield as well and leave nobody monitoring)."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sandboxwatch.store.worker_leases import LeaseBeat, LeaseHolder

log = logging.getLogger(__name__)

BEAT_SECONDS = 5.0
TTL_SECONDS = 15
SETTLE_SECONDS = 2.0


class LeaseStore(Protocol):
    def write_lease_beat(self, beat: LeaseBeat) -> None: ...

    def lease_holders(self, worker_id: str) -> list[LeaseHolder]: ...


class WorkerIdTaken(Exception):
    """Another live process holds this worker's id; the message is the one line the operator reads."""


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    beat_seconds: float = BEAT_SECONDS
    ttl_seconds: int = TTL_SECONDS
    # Longer than a second (the claim's resolution) and than a store round trip under load.
    settle_seconds: float = SETTLE_SECONDS


class WorkerIdLease:
    def __init__(
        self,
        store: LeaseStore,
        worker_id: str,
        timing: LeaseTiming = LeaseTiming(),
        *,
        nonce: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.timing = timing
        self.nonce = nonce or uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._clock = clock
        self._sleep = sleep
        self._beats = 0
        self._claimed = 0  # the server second of the first beat, once read back
        self._holding = False
        self._last_written: float | None = None

    # ---------------------------------------------------------------------------------------------------
    def acquire(self) -> None:
        """Blocks until this process holds the id (raises WorkerIdTaken if a live one ranked first keeps it)."""
        self._write()
        self._sleep(self.timing.settle_seconds)
        start = self._clock()
        deadline = start + self.timing.ttl_seconds + self.timing.beat_seconds
        next_beat = start + self.timing.beat_seconds - self.timing.settle_seconds
        waited_on: LeaseHolder | None = None
        while True:
            if self._clock() >= next_beat:
                self._write()
                next_beat = self._clock() + self.timing.beat_seconds
            ahead = self._ahead(self._live_rivals())
            if not ahead:
                if waited_on is not None:
                    log.warning(
                        "--worker-id %s: the previous holder (%s) stopped renewing; this worker takes the id",
                        self.worker_id,
                        _who(waited_on),
                    )
                self._holding = True
                self._write()
                return
            if waited_on is None:
                waited_on = ahead[0]
                log.warning(
                    "--worker-id %s is held by %s; waiting up to %.0f s for it to lapse",
                    self.worker_id,
                    _who(waited_on),
                    deadline - start,
                )
            if self._clock() >= deadline:
                self._give_up()
                raise WorkerIdTaken(self._taken(ahead[0]))
            self._sleep(1.0)

    def renew(self) -> list[LeaseHolder]:
        """One beat of a running worker: the live rivals ranked after it (they yield); raises WorkerIdTaken
        when a live one ranked first holds the id, or one took it over while this lease had lapsed."""
        lapse = self._lapse()
        if lapse is not None:
            holding = [h for h in self._live_rivals() if h.holding]
            if holding:
                raise WorkerIdTaken(
                    f"--worker-id {self.worker_id}: this worker's lease lapsed ({lapse:.0f} s without a renewal) "
                    f"and a live worker took the id over ({_who(holding[0])}); this one stops"
                )
        self._write()
        rivals = self._live_rivals()
        ahead = self._ahead(rivals)
        if ahead:
            raise WorkerIdTaken(self._taken(ahead[0]))
        if lapse is not None:
            log.warning(
                "--worker-id %s: lease renewed again after a %.0f s lapse; no worker took it over",
                self.worker_id,
                lapse,
            )
        return rivals

    def release(self) -> None:
        """An orderly stop: the id is free at once, so a restart does not wait out the TTL."""
        self._holding = False
        self._write(released=True)

    # ---------------------------------------------------------------------------------------------------
    def _give_up(self) -> None:
        """Released, so that a third process waiting behind this one is not held up by its beats."""
        try:
            self.release()
        except Exception as exc:  # the lease lapses by itself after the TTL
            log.warning("--worker-id %s: the lease could not be released (%s)", self.worker_id, exc)

    def _write(self, released: bool = False) -> None:
        self._beats += 1
        beat = LeaseBeat(
            self.worker_id, self.nonce, self._claimed, self._beats, self.host, self.pid, self._holding, released
        )
        self.store.write_lease_beat(beat)
        self._last_written = self._clock()

    def _lapse(self) -> float | None:
        if self._last_written is None:
            return None
        silent = self._clock() - self._last_written
        return silent if silent > self.timing.ttl_seconds else None

    def _live_rivals(self) -> list[LeaseHolder]:
        found = self.store.lease_holders(self.worker_id)
        for h in found:
            if h.nonce == self.nonce and not self._claimed:
                self._claimed = h.claimed
        return [
            h for h in found if h.nonce != self.nonce and not h.released and h.age_seconds <= self.timing.ttl_seconds
        ]

    def _ahead(self, rivals: list[LeaseHolder]) -> list[LeaseHolder]:
        """The rivals ranked before this process; all of them while its own first beat is not visible yet."""
        if not self._claimed:
            return sorted(rivals, key=_rank)
        mine = (self._claimed, self.nonce)
        return sorted((h for h in rivals if _rank(h) < mine), key=_rank)

    def _taken(self, holder: LeaseHolder) -> str:
        return (
            f"--worker-id {self.worker_id} is held by a live worker ({_who(holder)}, renewed {holder.age_seconds} s "
            'ago); an id must be unique among the live workers (deploy/OPERATIONS.md, "Worker ids"): this one stops'
        )


def _rank(holder: LeaseHolder) -> tuple[int, str]:
    return holder.claimed, holder.nonce


def _who(holder: LeaseHolder) -> str:
    return f"host {holder.host}, pid {holder.pid}"
