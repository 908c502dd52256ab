"""One live process per ``--worker-id``: a lease in the store, renewed by the process that holds it.

Why: a static member's id is its identity in the consumer group, and two live workers under one id must never
both consume. Apache Kafka fences the older one (FENCED_INSTANCE_ID), but tansu and noida-db 0.2.3 fence
neither: both workers read ready, both store every event (seen: 40,362 raw rows for 31,968 events). Nothing in
a broker-agnostic worker would notice, so the worker holds a lease of its own.

The lease is a row per process (a random nonce) in the store's ``worker_leases`` table, rewritten every
``beat_seconds``; its age is read on the store server's clock, so hosts with skewed clocks agree. A lease is
live while its last beat is at most ``ttl_seconds`` old and it was not released by an orderly stop. Processes
are ranked by (start time, nonce): the older one keeps the id, the newer one yields.

- Starting: the worker writes its first beat, then reads the id's holders; while an older live one exists it
  keeps beating and waits, for at most one TTL and a beat. A process killed with kill -9 stops beating and its
  lease lapses within the TTL, so a restart after kill -9 waits at most that long; one stopped with SIGTERM
  released its lease and the restart goes on at once. If the older one is still renewing at the end, it is
  alive: the newcomer exits 2 in one line, before it ever joins the consumer group.
- Running: each beat also reads the holders. An older live one (two started at the same moment, or the
  newcomer's first read missed the other's first beat) makes this one yield: it stops and exits 2. Newer live
  ones are counted (``sandboxwatch_worker_id_rivals``), so a worker that another keeps trying to displace shows
  it, and SandboxwatchWorkerIdShared fires.
- The store unreachable: a beat that cannot be written is logged and retried on the next one; the worker
  cannot store anything either, and says so through the store metrics. A worker that could not renew for
  longer than the TTL may have lost the id to a newcomer: its next successful beat finds out which yields."""

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


class LeaseStore(Protocol):
    def write_lease_beat(self, beat: LeaseBeat) -> None: ...

    def lease_holders(self, worker_id: str) -> list[LeaseHolder]: ...


class WorkerIdTaken(Exception):
    """Another live process holds this worker's id; the message is the one line the operator reads."""


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    beat_seconds: float = BEAT_SECONDS
    ttl_seconds: int = TTL_SECONDS


class WorkerIdLease:
    def __init__(
        self,
        store: LeaseStore,
        worker_id: str,
        timing: LeaseTiming = LeaseTiming(),
        *,
        nonce: str | None = None,
        started_ns: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.timing = timing
        self.nonce = nonce or uuid.uuid4().hex
        self.started_ns = time.time_ns() if started_ns is None else started_ns
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._clock = clock
        self._sleep = sleep
        self._beats = 0
        self._last_written: float | None = None

    # ---------------------------------------------------------------------------------------------------
    def acquire(self) -> None:
        """Blocks until this process holds the id (raises WorkerIdTaken if an older live one keeps it)."""
        start = self._clock()
        deadline = start + self.timing.ttl_seconds + self.timing.beat_seconds
        next_beat = start
        waited_on: LeaseHolder | None = None
        while True:
            if self._clock() >= next_beat:
                self._write()
                next_beat = self._clock() + self.timing.beat_seconds
            older = self._older(self._live_rivals())
            if not older:
                if waited_on is not None:
                    log.warning(
                        "--worker-id %s: the previous holder (%s) stopped renewing; this worker takes the id",
                        self.worker_id,
                        _who(waited_on),
                    )
                return
            if waited_on is None:
                waited_on = older[0]
                log.warning(
                    "--worker-id %s is held by %s; waiting up to %.0f s for it to lapse",
                    self.worker_id,
                    _who(waited_on),
                    deadline - start,
                )
            if self._clock() >= deadline:
                self._give_up()
                raise WorkerIdTaken(self._taken(older[0]))
            self._sleep(1.0)

    def renew(self) -> list[LeaseHolder]:
        """One beat of a running worker: the newer live rivals (they yield); raises WorkerIdTaken when an
        older live one holds the id, so this one must stop."""
        lapsed = self._lapsed()
        self._write()
        rivals = self._live_rivals()
        older = self._older(rivals)
        if older:
            raise WorkerIdTaken(self._taken(older[0]))
        if lapsed:
            log.warning("--worker-id %s: lease renewed again after a lapse; no other worker took it", self.worker_id)
        return rivals

    def release(self) -> None:
        """An orderly stop: the id is free at once, so a restart does not wait out the TTL."""
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
        self.store.write_lease_beat(
            LeaseBeat(self.worker_id, self.nonce, self.started_ns, self._beats, self.host, self.pid, released)
        )
        self._last_written = self._clock()

    def _lapsed(self) -> bool:
        return self._last_written is not None and self._clock() - self._last_written > self.timing.ttl_seconds

    def _live_rivals(self) -> list[LeaseHolder]:
        return [
            h
            for h in self.store.lease_holders(self.worker_id)
            if h.nonce != self.nonce and not h.released and h.age_seconds <= self.timing.ttl_seconds
        ]

    def _older(self, rivals: list[LeaseHolder]) -> list[LeaseHolder]:
        mine = (self.started_ns, self.nonce)
        return sorted((h for h in rivals if (h.started_ns, h.nonce) < mine), key=lambda h: (h.started_ns, h.nonce))

    def _taken(self, holder: LeaseHolder) -> str:
        return (
            f"--worker-id {self.worker_id} is held by a live worker ({_who(holder)}, renewed {holder.age_seconds} s "
            'ago); an id must be unique among the live workers (deploy/OPERATIONS.md, "Worker ids"): this one stops'
        )


def _who(holder: LeaseHolder) -> str:
    return f"host {holder.host}, pid {holder.pid}"
