"""The worker-id lease rows: each beat a process writes, and the holders of an id as the server sees them.

Ages come from the server's clock (``now()`` at the write and at the read), never from the workers' own, so
two hosts with skewed clocks still agree on whether a lease is live. Rows of a process accumulate until a
merge keeps the last one; every read aggregates per process, so counts are exact before any merge."""

from __future__ import annotations

from dataclasses import dataclass

from sandboxwatch.store.backends import Backend
from sandboxwatch.store.sql_text import quote


@dataclass(frozen=True, slots=True)
class LeaseBeat:
    worker_id: str
    nonce: str
    started_ns: int
    beat: int
    host: str
    pid: int
    released: bool = False


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """One process that wrote a lease for the id: its last beat and how long ago (server seconds) it came."""

    nonce: str
    started_ns: int
    beat: int
    host: str
    pid: int
    released: bool
    age_seconds: int


def write_beat(backend: Backend, db: str, beat: LeaseBeat) -> None:
    backend.command(
        f"INSERT INTO {db}.worker_leases (worker_id, nonce, started_ns, beat, released, host, pid, renewed) "
        f"SELECT {quote(beat.worker_id)}, {quote(beat.nonce)}, toUInt64({int(beat.started_ns)}), "
        f"toUInt64({int(beat.beat)}), toUInt8({int(beat.released)}), {quote(beat.host)}, "
        f"toUInt32({int(beat.pid)}), now()"
    )


def holders(backend: Backend, db: str, worker_id: str) -> list[LeaseHolder]:
    rows = backend.rows(
        "SELECT nonce, max(started_ns), max(beat), any(host), any(pid), max(released), "
        "toInt64(toUInt32(now())) - toInt64(toUInt32(max(renewed))) "
        f"FROM {db}.worker_leases WHERE worker_id = {quote(worker_id)} GROUP BY nonce ORDER BY nonce"
    )
    return [
        LeaseHolder(str(r[0]), int(r[1]), int(r[2]), str(r[3]), int(r[4]), bool(int(r[5])), int(r[6])) for r in rows
    ]
