"""The thread that renews a running worker's ``--worker-id`` lease (streams/worker_lease.py).

A thread of its own, not a faust timer on the monitor's executor: the monitor's thread can sit in a store
retry for minutes, and a lease that lapses only because the monitor is busy would let a newcomer take the id
of a live worker. The beat writes through the same store client (one query at a time), so it waits at most
for one statement in flight."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sandboxwatch.alerts.metrics import Metrics
from sandboxwatch.streams.worker_lease import WorkerIdLease, WorkerIdTaken

log = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(self, lease: WorkerIdLease, metrics: Metrics, on_taken: Callable[[WorkerIdTaken], None]) -> None:
        self.lease = lease
        self.metrics = metrics
        self.on_taken = on_taken
        self._stop = threading.Event()
        self._seen: set[str] = set()  # rival processes (nonces) already counted
        self._thread = threading.Thread(target=self._run, name="sandboxwatch-lease", daemon=True)

    def start(self) -> LeaseKeeper:
        self.metrics.worker_id_rivals.set(0)
        self.metrics.worker_id_rivals_seen.inc(0)  # exported at 0 from the start, so increase() sees the first
        self.metrics.lease_renewed.set_to_current_time()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing and release the id: after an orderly stop a restart need not wait out the TTL, and
        after yielding, the holder stops counting this process as a rival at once."""
        self._stop.set()
        self._thread.join(timeout=self.lease.timing.beat_seconds + 10)
        try:
            self.lease.release()
        except Exception as exc:  # the store gone at the stop: the lease lapses after its TTL instead
            log.warning(
                "--worker-id %s: the lease could not be released (%s); it lapses by itself", self.lease.worker_id, exc
            )

    def _run(self) -> None:
        while not self._stop.wait(self.lease.timing.beat_seconds):
            try:
                rivals = self.lease.renew()
            except WorkerIdTaken as exc:
                self.metrics.worker_id_rivals.set(1)
                self.on_taken(exc)
                return
            except Exception as exc:  # the store unreachable: the store metrics say so; the next beat retries
                log.warning("--worker-id %s: lease beat failed (%s); retrying", self.lease.worker_id, exc)
                continue
            self.metrics.lease_renewed.set_to_current_time()
            self.metrics.worker_id_rivals.set(len(rivals))
            for rival in rivals:
                if rival.nonce in self._seen:
                    continue
                # A rival stops itself within a beat: the gauge alone could fall between two scrapes.
                self._seen.add(rival.nonce)
                self.metrics.worker_id_rivals_seen.inc()
                log.error(
                    "--worker-id %s is also claimed by a newer live worker (host %s, pid %d); it must stop",
                    self.lease.worker_id,
                    rival.host,
                    rival.pid,
                )
