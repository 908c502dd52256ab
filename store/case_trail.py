"""Case transitions on findings: an append-only, hash-chained record of who did what to a case, and when.

Per participant, transition *n* stores ``entry_hash = sha256(prev_hash, n, every other column)`` (the time
as the DateTime column prints it), so editing, removing or reordering a row breaks a link that ``verify``
recomputes; every append also records the new head in ``case_trail_heads`` (insert-only), so cutting off
the newest transitions is caught too, as in the findings trail (store/finding_trail.py). The table is a
plain MergeTree: two rows at one position (two API processes racing) are both kept and reported, never
merged away.

A case's state is not stored anywhere else: it is the last transition's ``to_state`` (no transition: open).
Appends in this process are serialised by a lock, so the state a transition was judged on is the state it
is chained after. Run one API process per store (or the verifier reports the race)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sandboxwatch.store.backends import Backend
from sandboxwatch.store.finding_trail import GENESIS, Head, Problem
from sandboxwatch.store.history import MAX_LIMIT, Scope
from sandboxwatch.store.records import utf8_text
from sandboxwatch.store.sql_text import datetime_literal, in_list, quote, utc_text

TRANSITION_COLUMNS = (
    "participant", "seq", "finding_id", "action", "from_state", "to_state", "resolution", "reason", "assignee",
    "note", "actor", "actor_role", "at", "prev_hash", "entry_hash",
)  # fmt: skip
# Everything but the chain position, its predecessor and the hash itself (those are hashed as the link).
_HASHED = (TRANSITION_COLUMNS[0], *TRANSITION_COLUMNS[2:-2])
_CHANGE = ("action", "from_state", "to_state", "resolution", "reason", "assignee", "note")
HEAD_COLUMNS = ("participant", "seq", "entry_hash", "recorded")
_SELECT = ", ".join("toString(at)" if c == "at" else c for c in TRANSITION_COLUMNS)
_APPEND = threading.Lock()
CASE_FIELDS = (
    "participant", "finding_id", "rule", "kind", "severity", "subject", "ts", "message", "clause", "opened", "due",
    "state", "assignee", "resolution", "changed", "transitions", "overdue",
)  # fmt: skip


def transition_hash(prev_hash: str, seq: int, values: Mapping[str, Any]) -> str:
    canonical = json.dumps([prev_hash, seq, *(str(values[c]) for c in _HASHED)], ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CaseFilter:
    participant: str | None = None
    finding_id: str | None = None
    state: str | None = None
    assignee: str | None = None  # "" selects unassigned cases
    severity: str | None = None
    rule: str | None = None
    overdue: bool | None = None
    since: datetime | None = None  # the finding's event time, inclusive bounds
    until: datetime | None = None
    limit: int = 500
    offset: int = 0


class CaseTrail:
    def __init__(self, backend: Backend, db: str) -> None:
        self.backend = backend
        self.db = db

    # reads ------------------------------------------------------------------------------------------------
    def current(self, participant: str, finding_id: str) -> tuple[str, str, str]:
        """(state, assignee, resolution) after the case's last transition; ("open", "", "") without one."""
        rows = self.backend.rows(
            f"SELECT argMax(to_state, seq), argMax(assignee, seq), argMax(resolution, seq), count() "
            f"FROM {self.db}.case_transitions WHERE participant = {quote(participant)} "
            f"AND finding_id = {quote(finding_id)}"
        )
        if not rows or not int(rows[0][3]):
            return ("open", "", "")
        return (str(rows[0][0]), str(rows[0][1]), str(rows[0][2]))

    def transitions(self, participant: str, finding_id: str | None = None) -> list[dict[str, Any]]:
        which = f" AND finding_id = {quote(finding_id)}" if finding_id is not None else ""
        rows = self.backend.rows(
            f"SELECT {_SELECT} FROM {self.db}.case_transitions WHERE participant = {quote(participant)}{which} "
            "ORDER BY seq"
        )
        return [dict(zip(TRANSITION_COLUMNS, (str(v) for v in r), strict=True)) for r in rows]

    def heads(self) -> dict[str, Head]:
        rows = self.backend.rows(
            f"SELECT participant, max(seq), argMax(entry_hash, seq) FROM {self.db}.case_transitions "
            "GROUP BY participant"
        )
        return {str(p): Head(int(s), str(h)) for p, s, h in rows}

    def cases(
        self, scope: Scope, filt: CaseFilter, due_seconds: Callable[[str], int], now: datetime
    ) -> list[dict[str, Any]]:
        """Findings with their case state, most urgent (earliest due) first. ``due_seconds`` maps a severity
        to how long after the finding was stored its case falls due."""
        found = [scope.condition()]
        for column, value in (
            ("participant", filt.participant), ("finding_id", filt.finding_id), ("severity", filt.severity),
            ("rule", filt.rule),
        ):  # fmt: skip
            if value:
                found.append(f"{column} = {quote(value)}")
        due = (
            "multiIf("
            + ", ".join(f"any(severity) = {quote(s)}, {int(due_seconds(s))}" for s in ("critical", "breach", "warning"))
            + f", {int(due_seconds('info'))})"
        )
        outer = []
        if filt.state == "open":
            outer.append("c_state IN ('', 'open')")
        elif filt.state:
            outer.append(f"c_state = {quote(filt.state)}")
        if filt.assignee is not None:
            outer.append(f"c_assignee = {quote(filt.assignee)}")
        late = f"(c_state != 'resolved' AND due < {datetime_literal(now)})"
        if filt.overdue is not None:
            outer.append(late if filt.overdue else f"NOT {late}")
        if filt.since is not None:
            found.append(f"ts >= {datetime_literal(filt.since)}")
        if filt.until is not None:
            found.append(f"ts <= {datetime_literal(filt.until)}")
        limit = max(1, min(filt.limit, MAX_LIMIT))
        offset = max(0, min(filt.offset, 10_000_000))
        # Inner aliases differ from the column names: ClickHouse would resolve a WHERE on a column to its alias.
        rows = self.backend.rows(
            "SELECT participant, finding_id, f_rule, f_kind, f_severity, f_subject, f_ts, f_message, f_clause, "
            "toString(opened), toString(due), if(c_state = '', 'open', c_state), c_assignee, c_resolution, "
            f"if(c_count = 0, '', toString(c_changed)), c_count, {late} "
            "FROM (SELECT participant, finding_id, any(rule) AS f_rule, any(kind) AS f_kind, "
            "any(severity) AS f_severity, any(subject) AS f_subject, any(ts_text) AS f_ts, any(message) AS f_message, "
            f"any(clause) AS f_clause, min(recorded) AS opened, addSeconds(min(recorded), {due}) AS due "
            f"FROM {self.db}.findings WHERE {' AND '.join(found)} GROUP BY participant, finding_id) AS f "
            "ANY LEFT JOIN (SELECT participant, finding_id, argMax(to_state, seq) AS c_state, "
            "argMax(assignee, seq) AS c_assignee, argMax(resolution, seq) AS c_resolution, max(at) AS c_changed, "
            f"count() AS c_count FROM {self.db}.case_transitions WHERE {scope.condition()} "
            "GROUP BY participant, finding_id) AS c USING (participant, finding_id) "
            f"WHERE {' AND '.join(outer) or '1'} ORDER BY due, finding_id LIMIT {limit} OFFSET {offset}"
        )
        out = []
        for row in rows:
            item = dict(zip(CASE_FIELDS, row, strict=True))
            item["transitions"] = int(item["transitions"])
            item["overdue"] = bool(int(item["overdue"]))
            out.append({k: v if isinstance(v, int | bool) else str(v) for k, v in item.items()})
        return out

    def unresolved_per_day(
        self, scope: Scope, participants: Sequence[str], since: datetime, until: datetime,
        severities: Sequence[str] | None = None,
    ) -> list[tuple[str, date, str, int]]:  # fmt: skip
        """(participant, local day in Vietnam time, severity, cases not resolved) for findings with event time
        in [since, until]: the overview's open items once cases exist (the shape of its findings-per-day)."""
        if not participants:
            return []
        where = [scope.condition(), f"participant IN {in_list(participants)}", f"ts >= {datetime_literal(since)}",
                 f"ts <= {datetime_literal(until)}"]  # fmt: skip
        if severities is not None:
            where.append(f"severity IN {in_list(severities)}")
        rows = self.backend.rows(
            "SELECT participant, toString(toDate(ts + INTERVAL 7 HOUR)) AS day, severity, uniqExact(finding_id) "
            f"FROM {self.db}.findings WHERE {' AND '.join(where)} AND finding_id NOT IN (SELECT finding_id FROM "
            f"{self.db}.case_transitions WHERE participant IN {in_list(participants)} GROUP BY finding_id "
            "HAVING argMax(to_state, seq) = 'resolved') GROUP BY participant, day, severity "
            "ORDER BY participant, day, severity"
        )
        return [(str(p), date.fromisoformat(str(d)), str(s), int(n)) for p, d, s, n in rows]

    # writes -----------------------------------------------------------------------------------------------
    def append(
        self,
        participant: str,
        finding_id: str,
        decide: Callable[[tuple[str, str, str]], Mapping[str, str]],
        actor: str,
        actor_role: str,
        now: datetime,
    ) -> dict[str, Any]:
        """Judge the transition on the case's current state (``decide`` raises to refuse it) and chain it.
        Returns the stored row."""
        with _APPEND:
            change = decide(self.current(participant, finding_id))
            head = self.heads_of(participant)
            seq = head.seq + 1
            values: dict[str, Any] = {
                "participant": participant, "seq": seq, "finding_id": finding_id,
                **{k: utf8_text(str(change.get(k, ""))) for k in _CHANGE},
                "actor": utf8_text(actor), "actor_role": actor_role, "at": utc_text(now), "prev_hash": head.entry_hash,
            }  # fmt: skip
            values["entry_hash"] = transition_hash(head.entry_hash, seq, values)
            row = [now if c == "at" else values[c] for c in TRANSITION_COLUMNS]
            self.backend.insert("case_transitions", TRANSITION_COLUMNS, [row])
            self.backend.insert("case_trail_heads", HEAD_COLUMNS, [(participant, seq, values["entry_hash"], now)])
            return {k: str(v) for k, v in values.items()}

    def heads_of(self, participant: str) -> Head:
        rows = self.backend.rows(
            f"SELECT max(seq), argMax(entry_hash, seq), count() FROM {self.db}.case_transitions "
            f"WHERE participant = {quote(participant)}"
        )
        if not rows or not int(rows[0][2]):
            return Head(0, GENESIS)
        return Head(int(rows[0][0]), str(rows[0][1]))

    # verification -----------------------------------------------------------------------------------------
    def verify(self, participant: str | None = None) -> list[Problem]:
        """Every chain link, every row's content, each case's states following on, and the recorded heads."""
        where = f"WHERE participant = {quote(participant)}" if participant else ""
        chains: dict[str, dict[int, list[dict[str, str]]]] = defaultdict(lambda: defaultdict(list))
        for row in self.backend.rows(f"SELECT {_SELECT} FROM {self.db}.case_transitions {where}"):
            values = dict(zip(TRANSITION_COLUMNS, (str(v) for v in row), strict=True))
            chains[values["participant"]][int(values["seq"])].append(values)
        recorded: dict[str, list[Head]] = defaultdict(list)
        for p, seq, link in self.backend.rows(
            f"SELECT DISTINCT participant, seq, entry_hash FROM {self.db}.case_trail_heads {where}"
        ):
            recorded[str(p)].append(Head(int(seq), str(link)))
        problems: list[Problem] = []
        for name in sorted(set(chains) | set(recorded)):
            problems.extend(_check_chain(name, chains.get(name, {})))
            problems.extend(_check_heads(name, chains.get(name, {}), recorded.get(name, [])))
        return problems


def _check_chain(name: str, entries: Mapping[int, Sequence[Mapping[str, str]]]) -> list[Problem]:
    problems: list[Problem] = []
    prev = GENESIS
    states: dict[str, str] = {}
    for seq in range(1, max(entries, default=0) + 1):
        versions = entries.get(seq)
        if not versions:
            problems.append(Problem(name, seq, None, "case transition missing (a row was removed)"))
            prev = ""
            continue
        if len(versions) > 1:
            problems.append(Problem(name, seq, None, f"{len(versions)} different transitions share this position"))
        for entry in sorted(versions, key=lambda e: e["entry_hash"]):
            fid = entry["finding_id"]
            if prev and entry["prev_hash"] != prev:
                problems.append(
                    Problem(name, seq, fid, "does not follow the previous transition (reordered or removed)")
                )
            if transition_hash(entry["prev_hash"], seq, entry) != entry["entry_hash"]:
                problems.append(Problem(name, seq, fid, "transition hash does not match its content (row altered)"))
            before = states.get(fid, "open")
            if entry["from_state"] != before:
                what = f"starts from {entry['from_state']} but the case was {before} (a transition is missing)"
                problems.append(Problem(name, seq, fid, what))
            states[fid] = entry["to_state"]
            prev = entry["entry_hash"]
    return problems


def _check_heads(name: str, entries: Mapping[int, Sequence[Mapping[str, str]]], recorded: list[Head]) -> list[Problem]:
    top = max(entries, default=0)
    problems: list[Problem] = []
    highest = max((h.seq for h in recorded), default=0)
    if highest > top:
        what = f"the transitions end at seq {top} but a head was recorded at seq {highest} (newest removed)"
        problems.append(Problem(name, highest, None, what))
    for head in sorted(recorded, key=lambda h: h.seq):
        if head.seq <= top and head.entry_hash not in {e["entry_hash"] for e in entries.get(head.seq, ())}:
            problems.append(Problem(name, head.seq, None, "does not reach the head recorded here (chain rewritten)"))
            break
    return problems
