"""A tamper-evident trail of findings: per participant, each finding is chained to the one before by hash.

Entry *n* stores ``sha256(prev_hash, n, finding_id, finding_digest)`` where the digest covers every stored
field of the finding. Editing a finding, editing or deleting a trail row, or swapping two rows breaks a
link that ``verify`` recomputes. Rewriting the whole chain consistently is caught by comparing with chain
heads published earlier (``heads``), which is why operators should archive them outside the database.

Only the stream worker that owns a participant's partition appends to its chain. Appending is idempotent:
findings already in the trail are skipped, so a replayed batch (or a crash between storing a finding and
chaining it) ends with each finding chained exactly once."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rules_engine.findings import Finding
from store.backends import Backend
from store.records import EPOCH, FINDING_COLUMNS, finding_row
from store.sql_text import in_list, quote

GENESIS = "0" * 64
TRAIL_COLUMNS = ("participant", "seq", "finding_id", "finding_digest", "prev_hash", "entry_hash", "recorded")
# The stored finding fields the digest covers, in this order (``ts`` is covered by its exact text).
DIGEST_FIELDS = (
    "finding_id", "licence", "rule", "kind", "severity", "participant", "subject", "ts_text", "observed",
    "limit_value", "clause", "evidence", "message",
)  # fmt: skip


def finding_digest(values: Mapping[str, Any]) -> str:
    canonical = json.dumps([values[name] for name in DIGEST_FIELDS], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def digest_of(finding: Finding) -> str:
    row = dict(zip(FINDING_COLUMNS, finding_row(finding, EPOCH), strict=True))
    return finding_digest(row)


def entry_hash(prev_hash: str, seq: int, finding_id: str, digest: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{seq}\n{finding_id}\n{digest}".encode()).hexdigest()


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


class FindingTrail:
    def __init__(self, backend: Backend, db: str) -> None:
        self.backend = backend
        self.db = db

    def heads(self, participants: Iterable[str] | None = None) -> dict[str, Head]:
        where = f"WHERE participant IN {in_list(participants)}" if participants is not None else ""
        rows = self.backend.rows(
            f"SELECT participant, max(seq) AS top, argMax(entry_hash, seq) FROM {self.db}.finding_trail {where} "
            "GROUP BY participant"
        )
        return {str(p): Head(int(top), str(h)) for p, top, h in rows}

    def append(self, findings: Sequence[Finding], now: Any) -> int:
        """Chain the findings not chained yet; returns how many entries were added."""
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
        heads = self.heads({f.participant for f in todo})
        rows = []
        for finding in todo:
            head = heads.get(finding.participant, Head(0, GENESIS))
            seq = head.seq + 1
            digest = digest_of(finding)
            link = entry_hash(head.entry_hash, seq, finding.finding_id, digest)
            rows.append((finding.participant, seq, finding.finding_id, digest, head.entry_hash, link, now))
            heads[finding.participant] = Head(seq, link)
        self.backend.insert("finding_trail", TRAIL_COLUMNS, rows)
        return len(rows)

    def verify(self, participant: str | None = None, expected: Mapping[str, Head] | None = None) -> list[Problem]:
        where = f"WHERE participant = {quote(participant)}" if participant else ""
        trail: dict[str, dict[int, set[tuple[str, str, str, str]]]] = defaultdict(lambda: defaultdict(set))
        for p, seq, fid, digest, prev, link in self.backend.rows(
            f"SELECT participant, seq, finding_id, finding_digest, prev_hash, entry_hash "
            f"FROM {self.db}.finding_trail {where}"
        ):
            trail[str(p)][int(seq)].add((str(fid), str(digest), str(prev), str(link)))
        stored: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        columns = ", ".join(DIGEST_FIELDS)
        for row in self.backend.rows(f"SELECT {columns} FROM {self.db}.findings {where}"):
            values = dict(zip(DIGEST_FIELDS, row, strict=True))
            values["evidence"] = [str(e) for e in values["evidence"]]
            stored[str(values["participant"])][str(values["finding_id"])].add(finding_digest(values))
        problems: list[Problem] = []
        for name in sorted(set(trail) | set(stored) | set(expected or {})):
            problems.extend(
                _check_participant(name, trail.get(name, {}), stored.get(name, {}), (expected or {}).get(name))
            )
        return problems


def _chain_order(finding: Finding) -> tuple[str, str, str]:
    return (finding.participant, finding.ts.isoformat() if finding.ts else "", finding.finding_id)


def _check_participant(
    name: str,
    entries: Mapping[int, set[tuple[str, str, str, str]]],
    findings: Mapping[str, set[str]],
    expected: Head | None,
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
        for fid, digest, prev_hash, link in sorted(versions):
            chained.add(fid)
            if prev and prev_hash != prev:
                problems.append(Problem(name, seq, fid, "does not follow the previous entry (reordered or removed)"))
            if entry_hash(prev_hash, seq, fid, digest) != link:
                problems.append(Problem(name, seq, fid, "entry hash does not match its content (trail row altered)"))
            versions_stored = findings.get(fid)
            if not versions_stored:
                problems.append(Problem(name, seq, fid, "chained finding is missing from the findings table"))
            elif versions_stored != {digest}:
                problems.append(Problem(name, seq, fid, "finding differs from what was chained (altered)"))
            prev = link
    for fid in sorted(set(findings) - chained):
        problems.append(Problem(name, None, fid, "finding is not in the trail (inserted outside the monitor?)"))
    if expected is not None:
        at = entries.get(expected.seq)
        if not at or expected.entry_hash not in {link for *_, link in at}:
            problems.append(
                Problem(name, expected.seq, None, "does not reach the published chain head (chain rewritten)")
            )
    return problems
