"""A tamper-evident trail of findings: per participant, each finding is chained to the one before by hash.

Entry *n* stores ``sha256(prev_hash, n, finding_id, finding_digest)`` where the digest covers every stored
column of the finding *as stored* (read back after the insert, so what is chained is exactly what an
auditor later reads: ``ts`` as the DateTime column holds it, ``ts_text``, and ``recorded`` included).
Editing any column of a finding, editing or deleting a trail row, or swapping two rows breaks a link that
``verify`` recomputes.

Digest versions: entries written before every column was covered (version 1: ``ts`` only by its text,
``recorded`` not at all) keep verifying under their own rule, so a trail stays continuous across the
upgrade; new entries are version 2. The version is stored in each trail row and is part of what the
entry hash covers for version 2, so an entry cannot be downgraded to the weaker rule unnoticed.

The tail. Every append also records the new chain head in ``finding_trail_heads`` (insert-only), and
``verify`` checks that the trail still reaches every recorded head: removing the newest entries (with their
findings) is caught unless those head rows are removed too. Someone with write access to every table can
do that, and can also rebuild the whole chain consistently; only heads archived outside the database
(``audit heads``, then ``audit verify --heads``) catch that, and ``verify`` says so when none are given.

Only the stream worker that owns a participant's partition appends to its chain. Appending is idempotent:
findings already in the trail are skipped, so a replayed batch (or a crash between storing a finding and
chaining it) ends with each finding chained exactly once.

Verifying beside a live monitor. A write is three inserts in order: the findings, their trail entries, the
new heads; a reader can land between them. ``verify`` reads in the reverse order (heads, then the trail,
then the findings), so every head it sees has its entries and every entry its finding, and the one state
a write in progress can still show is a finding not chained yet. On a cluster the replica it reads must
first have every acknowledged part (the same gate the writer passes), or the tables it reads could be at
different points. A finding not chained yet is checked again for up to ``settle`` seconds before it is
reported (on a cluster, whose replicas fetch each table's parts in their own order, any problem is): a
write in progress finishes within that, tampering does not go away."""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.store.backends import Backend, StoreError
from sandboxwatch.store.records import FINDING_COLUMNS
from sandboxwatch.store.sql_text import in_list, quote

GENESIS = "0" * 64
DIGEST_VERSION = 2
TRAIL_COLUMNS = (
    "participant", "seq", "finding_id", "finding_digest", "prev_hash", "entry_hash", "recorded", "digest_version",
)  # fmt: skip
HEAD_COLUMNS = ("participant", "seq", "entry_hash", "recorded")
# Version 2: every stored column, in table order (``ts`` and ``recorded`` as the server prints them).
DIGEST_FIELDS = FINDING_COLUMNS
# Version 1 (before every column was covered): kept to verify entries written then.
DIGEST_FIELDS_V1 = (
    "finding_id", "licence", "rule", "kind", "severity", "participant", "subject", "ts_text", "observed",
    "limit_value", "clause", "evidence", "message",
)  # fmt: skip
_SELECT = ", ".join(f"toString({c})" if c in ("ts", "recorded") else c for c in FINDING_COLUMNS)
_CHUNK = 2000
TAIL_NOTE = (
    "a trail whose newest entries were removed together with their findings and recorded heads looks intact "
    "from inside the database: compare with heads archived outside it ('audit heads', then --heads FILE)"
)


def finding_digest(values: Mapping[str, Any], version: int = DIGEST_VERSION) -> str:
    fields = DIGEST_FIELDS if version >= 2 else DIGEST_FIELDS_V1
    canonical = json.dumps([values[name] for name in fields], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def entry_hash(prev_hash: str, seq: int, finding_id: str, digest: str, version: int = DIGEST_VERSION) -> str:
    stamp = f"\nv{version}" if version >= 2 else ""
    return hashlib.sha256(f"{prev_hash}\n{seq}\n{finding_id}\n{digest}{stamp}".encode()).hexdigest()


def _stored(row: Sequence[Any]) -> dict[str, Any]:
    """A findings row as read with ``_SELECT``, in the canonical form both backends give."""
    values = dict(zip(FINDING_COLUMNS, row, strict=True))
    values["evidence"] = [str(e) for e in values["evidence"]]
    for name in ("observed", "limit_value"):
        values[name] = None if values[name] is None else str(values[name])
    return {k: v if k in ("evidence", "observed", "limit_value") else str(v) for k, v in values.items()}


_VISIBILITY_TRIES = 8  # 0.05 s doubling to 2 s: about 7 s in all
# How long verify re-checks what it found before reporting it: longer than a write in progress takes to chain
# what it stored (three inserts and three reads, seconds under load), far shorter than any audit.
SETTLE_SECONDS = 10.0
_SETTLE_POLL = 0.5
NOT_CHAINED = "finding is not in the trail (inserted outside the monitor?)"


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    entry_hash: str


@dataclass(frozen=True, slots=True)
class Problem:
    participant: str
    seq: int | None
    finding_id: str | None
    what: str

    def describe(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "trail"
        subject = f" finding {self.finding_id}" if self.finding_id else ""
        return f"{self.participant} {where}{subject}: {self.what}"


@dataclass(frozen=True, slots=True)
class _Entry:
    finding_id: str
    digest: str
    prev_hash: str
    link: str
    version: int


class FindingTrail:
    def __init__(
        self, backend: Backend, db: str, before_read: Callable[[], None] | None = None, settle: float = SETTLE_SECONDS
    ) -> None:
        """``before_read``: waits until the tables read are consistent with each other (a cluster's replica
        gate) or raises StoreError; ``settle``: see the module docstring."""
        self.backend = backend
        self.db = db
        self.before_read = before_read
        self.settle = settle

    def heads(self, participants: Iterable[str] | None = None) -> dict[str, Head]:
        where = f"WHERE participant IN {in_list(participants)}" if participants is not None else ""
        rows = self.backend.rows(
            f"SELECT participant, max(seq) AS top, argMax(entry_hash, seq) FROM {self.db}.finding_trail {where} "
            "GROUP BY participant"
        )
        return {str(p): Head(int(top), str(h)) for p, top, h in rows}

    def _visible_rows(self, todo: Sequence[Finding]) -> dict[str, list[dict[str, Any]]]:
        """The stored rows of findings the caller has just written. On a cluster a read can reach a replica
        that has not fetched the new part yet (one that has just come back, say); skipping those findings
        would leave them stored and unchained for good, since the batch's offsets are committed after this.
        So wait a little for them, then fail the write (the worker retries the batch) rather than skip."""
        stored = self._stored_rows(todo)
        delay = 0.05
        for _ in range(_VISIBILITY_TRIES):
            missing = [f for f in todo if f.finding_id not in stored]
            if not missing:
                return stored
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            stored.update(self._stored_rows(missing))
        absent = [f.finding_id for f in todo if f.finding_id not in stored]
        if absent:
            raise StoreError(f"{len(absent)} findings just written are not readable yet (first: {absent[0]}); "
                             "not chaining them blind, the batch will be retried")  # fmt: skip
        return stored

    def _stored_rows(self, todo: Sequence[Finding]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for start in range(0, len(todo), _CHUNK):
            chunk = todo[start : start + _CHUNK]
            ids = in_list(f.finding_id for f in chunk)
            participants = in_list(sorted({f.participant for f in chunk}))  # the table's key prefix
            for row in self.backend.rows(
                f"SELECT {_SELECT} FROM {self.db}.findings WHERE participant IN {participants} AND finding_id IN {ids}"
            ):
                values = _stored(row)
                found[values["finding_id"]].append(values)
        return found

    def append(self, findings: Sequence[Finding], now: Any) -> int:
        """Chain the stored findings not chained yet; returns how many entries were added."""
        unique = {f.finding_id: f for f in findings}
        if not unique:
            return 0
        chained = {
            str(row[0])
            for row in self.backend.rows(
                f"SELECT finding_id FROM {self.db}.finding_trail WHERE finding_id IN {in_list(unique)}"
            )
        }
        todo = sorted((f for f in unique.values() if f.finding_id not in chained), key=_chain_order)
        if not todo:
            return 0
        stored = self._visible_rows(todo)
        heads = self.heads({f.participant for f in todo})
        rows = []
        for finding in todo:
            versions = sorted(
                (v for v in stored.get(finding.finding_id, []) if v["participant"] == finding.participant),
                key=finding_digest,
            )
            if not versions:
                continue  # unreachable: _visible_rows raised for it
            head = heads.get(finding.participant, Head(0, GENESIS))
            seq = head.seq + 1
            digest = finding_digest(versions[0])  # two stored versions: verify reports the other as altered
            link = entry_hash(head.entry_hash, seq, finding.finding_id, digest)
            rows.append((finding.participant, seq, finding.finding_id, digest, head.entry_hash, link, now,
                         DIGEST_VERSION))  # fmt: skip
            heads[finding.participant] = Head(seq, link)
        self.backend.insert("finding_trail", TRAIL_COLUMNS, rows)
        touched = {row[0] for row in rows}
        self.backend.insert(
            "finding_trail_heads", HEAD_COLUMNS, [(p, heads[p].seq, heads[p].entry_hash, now) for p in sorted(touched)]
        )
        return len(rows)

    def recorded_heads(self, participant: str | None = None) -> dict[str, list[Head]]:
        where = f"WHERE participant = {quote(participant)}" if participant else ""
        found: dict[str, list[Head]] = defaultdict(list)
        for p, seq, link in self.backend.rows(
            f"SELECT DISTINCT participant, seq, entry_hash FROM {self.db}.finding_trail_heads {where}"
        ):
            found[str(p)].append(Head(int(seq), str(link)))
        return found

    def verify(self, participant: str | None = None, expected: Mapping[str, Head] | None = None) -> list[Problem]:
        """Every problem of the chain (one participant's, or all), as it stands once writes in progress have
        had ``settle`` seconds to finish; empty when intact."""
        if self.before_read is not None:
            self.before_read()
        problems = self._verify_once(participant, expected)
        deadline = time.monotonic() + self.settle
        while self._may_settle(problems) and time.monotonic() < deadline:
            time.sleep(min(_SETTLE_POLL, max(deadline - time.monotonic(), 0.0)))
            unchained = [p.finding_id for p in problems if p.what == NOT_CHAINED and p.finding_id]
            if len(unchained) == len(problems) and not self._chained(unchained):
                continue  # nothing moved yet: no need to read everything again
            problems = self._verify_once(participant, expected)
        return problems

    def _may_settle(self, problems: Sequence[Problem]) -> bool:
        """Whether these problems could be a write in progress rather than tampering."""
        if self.before_read is not None:
            return bool(problems)
        return any(p.what == NOT_CHAINED for p in problems)

    def _chained(self, finding_ids: Sequence[str]) -> bool:
        rows = self.backend.rows(
            f"SELECT count() FROM {self.db}.finding_trail WHERE finding_id IN {in_list(finding_ids[:_CHUNK])}"
        )
        return bool(rows and int(rows[0][0]))

    def _verify_once(self, participant: str | None, expected: Mapping[str, Head] | None) -> list[Problem]:
        where = f"WHERE participant = {quote(participant)}" if participant else ""
        # The reverse of the writer's order (findings, trail, heads): see the module docstring.
        recorded = self.recorded_heads(participant)
        trail: dict[str, dict[int, set[_Entry]]] = defaultdict(lambda: defaultdict(set))
        for p, seq, fid, digest, prev, link, version in self.backend.rows(
            f"SELECT participant, seq, finding_id, finding_digest, prev_hash, entry_hash, digest_version "
            f"FROM {self.db}.finding_trail {where}"
        ):
            trail[str(p)][int(seq)].add(_Entry(str(fid), str(digest), str(prev), str(link), int(version)))
        stored: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        for row in self.backend.rows(f"SELECT {_SELECT} FROM {self.db}.findings {where}"):
            values = _stored(row)
            stored[values["participant"]][values["finding_id"]].append(values)
        if participant and expected is not None:
            expected = {p: h for p, h in expected.items() if p == participant}
        problems: list[Problem] = []
        for name in sorted(set(trail) | set(stored) | set(expected or {}) | set(recorded)):
            entries = trail.get(name, {})
            problems.extend(_check_chain(name, entries, stored.get(name, {})))
            problems.extend(_check_heads(name, entries, recorded.get(name, []), (expected or {}).get(name)))
        return problems


def _chain_order(finding: Finding) -> tuple[str, str, str]:
    return (finding.participant, finding.ts.isoformat() if finding.ts else "", finding.finding_id)


def _check_chain(
    name: str, entries: Mapping[int, set[_Entry]], findings: Mapping[str, list[dict[str, Any]]]
) -> list[Problem]:
    problems: list[Problem] = []
    prev = GENESIS
    chained: set[str] = set()
    top = max(entries, default=0)
    for seq in range(1, top + 1):
        versions = entries.get(seq)
        if not versions:
            problems.append(Problem(name, seq, None, "trail entry missing (a row was removed)"))
            prev = ""
            continue
        if len(versions) > 1:
            problems.append(Problem(name, seq, None, f"{len(versions)} different trail entries share this position"))
        for entry in sorted(versions, key=lambda e: (e.finding_id, e.link)):
            fid = entry.finding_id
            chained.add(fid)
            if prev and entry.prev_hash != prev:
                problems.append(Problem(name, seq, fid, "does not follow the previous entry (reordered or removed)"))
            if entry_hash(entry.prev_hash, seq, fid, entry.digest, entry.version) != entry.link:
                problems.append(Problem(name, seq, fid, "entry hash does not match its content (trail row altered)"))
            rows = findings.get(fid)
            if not rows:
                problems.append(Problem(name, seq, fid, "chained finding is missing from the findings table"))
            elif {finding_digest(r, entry.version) for r in rows} != {entry.digest}:
                problems.append(Problem(name, seq, fid, "finding differs from what was chained (altered)"))
            prev = entry.link
    for fid in sorted(set(findings) - chained):
        problems.append(Problem(name, None, fid, NOT_CHAINED))
    return problems


def _reaches(entries: Mapping[int, set[_Entry]], head: Head) -> bool:
    return head.entry_hash in {e.link for e in entries.get(head.seq, ())}


def _check_heads(
    name: str, entries: Mapping[int, set[_Entry]], recorded: list[Head], expected: Head | None
) -> list[Problem]:
    problems: list[Problem] = []
    top = max(entries, default=0)
    highest = max(recorded, key=lambda h: h.seq, default=None)
    if highest is not None and highest.seq > top:
        what = f"the trail ends at seq {top} but the monitor recorded a head at seq {highest.seq}"
        what += " (newest entries removed)"
        problems.append(Problem(name, highest.seq, None, what))
    broken = sorted((h for h in recorded if h.seq <= top and not _reaches(entries, h)), key=lambda h: h.seq)
    if broken:
        what = f"does not reach {len(broken)} head(s) the monitor recorded, first at this position (chain rewritten)"
        problems.append(Problem(name, broken[0].seq, None, what))
    if expected is not None and not _reaches(entries, expected):
        problems.append(Problem(name, expected.seq, None, "does not reach the published chain head (chain rewritten)"))
    return problems
