"""The worker-id lease rows: each beat a process writes, and the holders of an id as the server sees them.

Every time in them is the server's (``now()`` at the write and at the read), never a worker's own, so two
hosts with skewed clocks still agree on whose lease is live and who claimed the id first. A process's rows
accumulate until a merge keeps its last one; every read aggregates per process, so answers are the same
before and after any merge: the first beat carries no claim time (``claimed`` 0) and the ones after carry
the first beat's ``renewed``, so the claim time is ``renewed`` of a lone first row or ``claimed`` of any
later one."""

from __future__ import annotations

from dataclasses import dataclass

from sandboxwatch.store.backends import Backend
from sandboxwatch.store.sql_text import quote


@dataclass(frozen=True, slots=True)
class LeaseBeat:
    worker_id: str
    nonce: str
    claimed: int  # server seconds of this process's first beat; 0 until it has read it back
    beat: int
    host: str
    pid: int
    holding: bool = False  # the process holds the id (its acquire succeeded), not merely waiting for it
    released: bool = False


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """One process that wrote a lease for the id, as of its last beat."""

    nonce: str
    claimed: int  # server seconds of its first beat: the rank, the nonce breaking ties
    beat: int
    host: str
    pid: int
    holding: bool
    released: bool
    age_seconds: int  # since its last beat, on the server's clock


def write_beat(backend: Backend, db: str, beat: LeaseBeat) -> None:
    backend.command(
        f"INSERT INTO {db}.worker_leases "
        "(worker_id, nonce, claimed, beat, holding, released, host, pid, renewed) "
        f"SELECT {quote(beat.worker_id)}, {quote(beat.nonce)}, toDateTime({int(beat.claimed)}, 'UTC'), "
        f"toUInt64({int(beat.beat)}), toUInt8({int(beat.holding)}), toUInt8({int(beat.released)}), "
        f"{quote(beat.host)}, toUInt32({int(beat.pid)}), now()"
    )


def holders(backend: Backend, db: str, worker_id: str) -> list[LeaseHolder]:
    rows = backend.rows(
        "SELECT nonce, min(if(toUInt32(claimed) = 0, toUInt32(renewed), toUInt32(claimed))), max(beat), "
        "any(host), any(pid), max(holding), max(released), "
        "toInt64(toUInt32(now())) - toInt64(toUInt32(max(renewed))) "
        f"FROM {db}.worker_leases WHERE worker_id = {quote(worker_id)} GROUP BY nonce ORDER BY nonce"
    )
    return [
        LeaseHolder(str(r[0]), int(r[1]), int(r[2]), str(r[3]), int(r[4]), bool(int(r[5])), bool(int(r[6])), int(r[7]))
        for r in rows
    ]
