"""Read-side queries for auditors, regulators and participants, always through a tenancy scope.

Every query takes a ``Scope`` and adds its participant condition itself, so neither the HTTP API nor the
CLI can forget it: a participant's key can never read another participant's rows, whatever the filters."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandboxwatch.rules_engine.findings import FINDING_FIELDS
from sandboxwatch.store.clickhouse_store import Store, _now
from sandboxwatch.store.sql_text import datetime_literal, in_list, quote

# A stored finding: its fields, and when the store first recorded it.
STORED_FINDING_FIELDS = (*FINDING_FIELDS, "recorded")
_FINDING_SELECT = (
    "finding_id, any(licence), any(rule), any(kind), any(severity), participant, any(subject), any(ts_text), "
    "any(observed), any(limit_value), any(clause), any(evidence), any(message), toString(min(recorded))"
)
# A dead letter's time for period filters: the event time its text carries (a top-level "ts" that parses as a
# time), else when it was recorded. Findings and events are filtered by their event time ``ts``. Parsed here
# with functions ClickHouse 18.16 has too (no JSONExtract there); an empty match must not reach the parser,
# which reads '' as 2000-01-01 on that version.
_LETTER_TS = r"""extract(raw, '"ts"\\s*:\\s*"([^"]{1,64})"')"""
_DEAD_LETTER_TIME = f"if({_LETTER_TS} = '', recorded, ifNull(parseDateTimeBestEffortOrNull({_LETTER_TS}), recorded))"
SEVERITY_ORDER = ("critical", "breach", "warning", "info")
MAX_LIMIT = 100_000
MAX_OFFSET = 10_000_000  # deeper than any participant's history; bounds the work one request can ask for


@dataclass(frozen=True, slots=True)
class Scope:
    """Which participants' data a caller may see: ``None`` means all (regulators and auditors)."""

    participants: frozenset[str] | None = None

    def allows(self, participant: str) -> bool:
        return self.participants is None or participant in self.participants

    def condition(self) -> str:
        return "1" if self.participants is None else f"participant IN {in_list(sorted(self.participants))}"


@dataclass(frozen=True, slots=True)
class FindingFilter:
    participant: str | None = None
    rule: str | None = None
    kind: str | None = None
    severity: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    limit: int = 500
    offset: int = 0

    def conditions(self) -> list[str]:
        out = []
        for column, value in (
            ("participant", self.participant), ("rule", self.rule), ("kind", self.kind), ("severity", self.severity)
        ):  # fmt: skip
            if value:
                out.append(f"{column} = {quote(value)}")
        if self.since:
            out.append(f"ts >= {datetime_literal(self.since)}")
        if self.until:
            out.append(f"ts <= {datetime_literal(self.until)}")
        if self.text:
            needle = quote(self.text.lower())
            out.append(
                f"(position(lower(message), {needle}) > 0 OR position(lower(subject), {needle}) > 0 "
                f"OR position(finding_id, {needle}) > 0)"
            )
        return out


def _finding(row: tuple[Any, ...]) -> dict[str, Any]:
    item = dict(zip(STORED_FINDING_FIELDS, row, strict=True))
    item["evidence"] = [str(e) for e in item["evidence"]]
    item["ts"] = item["ts"] or None
    return item


def _evidence_event(event_id: str, body: str, source: str) -> dict[str, Any]:
    """The evidence event as it arrived; a body that is not plain JSON (a byte-order mark, a connector's
    quirk) is shown as its text rather than failing the whole finding."""
    try:
        return {"event_id": event_id, "event": json.loads(body.removeprefix("\ufeff")), "source": source}
    except ValueError:
        return {"event_id": event_id, "event": None, "raw": body, "source": source}


class History:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.store.backend.rows(sql)

    def participants(self, scope: Scope) -> list[str]:
        rows = self._rows(
            f"SELECT participant FROM (SELECT DISTINCT participant FROM {self.db}.events WHERE {scope.condition()} "
            f"UNION ALL SELECT DISTINCT participant FROM {self.db}.licence_versions WHERE {scope.condition()}) "
            "GROUP BY participant ORDER BY participant"
        )
        return [str(r[0]) for r in rows]

    def findings(self, scope: Scope, filt: FindingFilter) -> list[dict[str, Any]]:
        where = " AND ".join([scope.condition(), *filt.conditions()])
        limit = max(1, min(filt.limit, MAX_LIMIT))
        rows = self._rows(
            f"SELECT {_FINDING_SELECT} FROM {self.db}.findings WHERE {where} GROUP BY participant, finding_id "
            f"ORDER BY any(ts) DESC, finding_id LIMIT {limit} OFFSET {max(0, min(filt.offset, MAX_OFFSET))}"
        )
        return [_finding(r) for r in rows]

    def finding(self, scope: Scope, finding_id: str) -> dict[str, Any] | None:
        """A finding with its evidence events (as they arrived) and the notes regulators added to it."""
        rows = self._rows(
            f"SELECT {_FINDING_SELECT} FROM {self.db}.findings WHERE {scope.condition()} "
            f"AND finding_id = {quote(finding_id)} GROUP BY participant, finding_id"
        )
        if not rows:
            return None
        item = _finding(rows[0])
        participant = item["participant"]
        bodies = self._rows(
            f"SELECT event_id, any(body), any(source) FROM {self.db}.events WHERE participant = {quote(participant)} "
            f"AND event_id IN {in_list(item['evidence'])} GROUP BY event_id"
        )
        found = {str(e): (str(b), str(s)) for e, b, s in bodies}
        item["evidence_events"] = [
            _evidence_event(e, *found[e]) if e in found else {"event_id": e, "event": None} for e in item["evidence"]
        ]
        item["notes"] = self.notes(participant, finding_id)
        return item

    def notes(self, participant: str, finding_id: str) -> list[dict[str, Any]]:
        rows = self._rows(
            f"SELECT note_id, any(author), any(status), any(note), toString(any(created)) FROM {self.db}.finding_notes "
            f"WHERE participant = {quote(participant)} AND finding_id = {quote(finding_id)} GROUP BY note_id "
            "ORDER BY any(created), note_id"
        )
        return [dict(zip(("note_id", "author", "status", "note", "created"), r, strict=True)) for r in rows]

    def add_note(self, participant: str, finding_id: str, author: str, status: str, note: str) -> dict[str, Any]:
        created = _now()
        note_id = hashlib.sha256(f"{finding_id}\n{author}\n{created.isoformat()}\n{note}".encode()).hexdigest()[:24]
        self.store.backend.insert(
            "finding_notes",
            ("note_id", "finding_id", "participant", "author", "status", "note", "created"),
            [(note_id, finding_id, participant, author, status, note, created)],
        )
        return {"note_id": note_id, "author": author, "status": status, "note": note, "created": str(created)}

    def summary(self, scope: Scope, participant: str, since: datetime, until: datetime) -> dict[str, Any] | None:
        """Compliance for a period: findings by severity and rule, events by type, dead letters."""
        if not scope.allows(participant):
            return None
        who = f"participant = {quote(participant)}"
        period = f"ts >= {datetime_literal(since)} AND ts <= {datetime_literal(until)}"
        by_rule = self._rows(
            f"SELECT rule, kind, severity, uniqExact(finding_id) FROM {self.db}.findings WHERE {who} AND {period} "
            "GROUP BY rule, kind, severity ORDER BY rule"
        )
        by_type = self._rows(
            f"SELECT type, uniqExact(event_id), toString(min(ts)), toString(max(ts)) FROM {self.db}.events "
            f"WHERE {who} AND {period} GROUP BY type ORDER BY type"
        )
        letter_time = _DEAD_LETTER_TIME
        letters = self._rows(
            f"SELECT uniqExact(letter_id) FROM {self.db}.dead_letters WHERE {who} "
            f"AND {letter_time} >= {datetime_literal(since)} AND {letter_time} <= {datetime_literal(until)}"
        )
        severities = dict.fromkeys(SEVERITY_ORDER, 0)
        rules = []
        for rule, kind, severity, count in by_rule:
            severities[str(severity)] = severities.get(str(severity), 0) + int(count)
            rules.append({"rule": str(rule), "kind": str(kind), "severity": str(severity), "findings": int(count)})
        failing = severities["breach"] + severities["critical"]
        events = sum(int(n) for _, n, _, _ in by_type)
        # No event in the period means nothing was judged: "compliant" would be a claim nobody checked.
        compliant = False if failing else True if events else None
        no_data = None
        if compliant is None:
            no_data = (
                f"no events of {participant} in the period: nothing was judged"
                if self._known(participant)
                else f"unknown participant {participant}: no events, findings or licence on record"
            )
        return {
            "participant": participant,
            "from": since.isoformat(),
            "to": until.isoformat(),
            "compliant": compliant,
            "no_data": no_data,
            "findings_by_severity": severities,
            "findings_by_rule": rules,
            "events_by_type": {str(t): int(n) for t, n, _, _ in by_type},
            "first_event": min((str(first) for _, _, first, _ in by_type), default=None),
            "last_event": max((str(last) for _, _, _, last in by_type), default=None),
            "dead_letters": int(letters[0][0]) if letters else 0,
        }

    def _known(self, participant: str) -> bool:
        who = f"participant = {quote(participant)}"
        rows = self._rows(
            f"SELECT count() FROM (SELECT 1 FROM {self.db}.events WHERE {who} LIMIT 1 UNION ALL SELECT 1 FROM "
            f"{self.db}.findings WHERE {who} LIMIT 1 UNION ALL SELECT 1 FROM {self.db}.licence_versions "
            f"WHERE {who} LIMIT 1)"
        )
        return bool(rows and int(rows[0][0]))

    def record_denial(self, key_name: str, role: str, participant: str, method: str, path: str, status: int,
                      reason: str) -> None:  # fmt: skip
        self.store.backend.insert(
            "access_denials",
            ("at", "key_name", "role", "participant", "method", "path", "status", "reason"),
            [(_now(), key_name, role, participant, method, path, status, reason)],
        )

    def denials(self, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self._rows(
            f"SELECT toString(at), key_name, role, participant, method, path, status, reason "
            f"FROM {self.db}.access_denials ORDER BY at DESC LIMIT {max(1, min(limit, MAX_LIMIT))}"
        )
        names = ("at", "key_name", "role", "participant", "method", "path", "status", "reason")
        return [dict(zip(names, r, strict=True)) for r in rows]
