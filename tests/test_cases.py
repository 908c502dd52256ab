"""The case workflow over a real (embedded) ClickHouse: transitions by role, tenancy (tests try to cross it),
bulk actions, filters, due dates, and the hash-chained record catching an altered or removed transition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("chdb")

from fastapi.testclient import TestClient

from sandboxwatch.api.case_workflow import CaseState, DueTimes, WorkflowError, decide
from sandboxwatch.api.case_workflow import Request as CaseRequest
from sandboxwatch.store.case_trail import CaseFilter, CaseTrail
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.history import History, Scope
from tests.api_fixtures import (
    DA_NANG_PARTICIPANT,
    NATIONAL_PARTICIPANT,
    Monitored,
    api_database,
    call,
)

LATER = datetime.now(UTC) + timedelta(days=2)  # the desk's clock in these tests: two days after the findings


monitored, client, _own_database = api_database("cases", accounts=40)


def ids_of(monitored: Monitored, participant: str, severity: str | None = None) -> list[str]:
    trail = CaseTrail(monitored.store.backend, monitored.store.db)
    found = trail.cases(Scope(), CaseFilter(participant=participant, severity=severity), DueTimes().seconds, LATER)
    return [c["finding_id"] for c in found]


def test_the_rules_refuse_what_a_state_does_not_allow() -> None:
    opened = CaseState()
    assert decide(opened, CaseRequest("acknowledge")).to_state == "acknowledged"
    for state, asked, status in (
        (CaseState("acknowledged"), CaseRequest("acknowledge"), 409),
        (CaseState("resolved", "", "remedied"), CaseRequest("resolve", "remedied", "again"), 409),
        (opened, CaseRequest("resolve", "remedied", "   "), 422),
        (opened, CaseRequest("resolve", "fixed", "why"), 422),
        (opened, CaseRequest("reopen", reason="why"), 409),
        (CaseState("resolved", "", "remedied"), CaseRequest("answer", note="done"), 409),
        (opened, CaseRequest("answer", note=" "), 422),
        (opened, CaseRequest("answer", note="x" * 16_001), 422),
    ):
        with pytest.raises(WorkflowError) as refused:
            decide(state, asked)
        assert refused.value.status == status, (state, asked)
    assert DueTimes.parse("critical=12h,warning=2d").seconds("critical") == 12 * 3600
    assert DueTimes.parse("critical=12h,warning=2d").seconds("breach") == 3 * 86400
    with pytest.raises(ValueError, match="days or hours"):
        DueTimes.parse("breach=3w")


def test_regulator_walks_a_case_through_every_state(client: TestClient, monitored: Monitored) -> None:
    finding = ids_of(monitored, DA_NANG_PARTICIPANT, "breach")[0]
    base = f"/api/v1/cases/{finding}"
    steps = f"{base}/transitions"
    assert call(client, "GET", base, "regulator").json()["state"] == "open"
    ack = call(client, "POST", steps, "regulator", {"action": "acknowledge"})
    assert ack.status_code == 200 and ack.json()["to_state"] == "acknowledged" and ack.json()["actor"] == "sbv-desk"
    again = call(client, "POST", steps, "regulator", {"action": "acknowledge"})
    assert again.status_code == 409 and "acknowledged" in again.json()["detail"]
    no_reason = call(client, "POST", steps, "regulator", {"action": "resolve", "resolution": "remedied"})
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]
    assigned = call(client, "POST", steps, "regulator", {"action": "assign", "assignee": "an.nguyen"})
    assert assigned.status_code == 200
    resolve = {"action": "resolve", "resolution": "accepted_risk", "reason": "within the pilot's tolerance"}
    done = call(client, "POST", steps, "regulator", resolve)
    assert done.status_code == 200
    case = call(client, "GET", base, "auditor").json()
    assert (case["state"], case["resolution"], case["assignee"]) == ("resolved", "accepted_risk", "an.nguyen")
    assert [t["action"] for t in case["history"]] == ["acknowledge", "assign", "resolve"]
    assert case["history"][2]["reason"] == "within the pilot's tolerance"
    assert call(client, "POST", steps, "auditor", {"action": "reopen", "reason": "x"}).status_code == 403
    reopened = call(client, "POST", steps, "regulator", {"action": "reopen", "reason": "new evidence"})
    assert reopened.json()["to_state"] == "open"


def test_participants_see_only_their_own_cases_and_only_answer(client: TestClient, monitored: Monitored) -> None:
    own = ids_of(monitored, DA_NANG_PARTICIPANT, "critical")[0]
    other = ids_of(monitored, NATIONAL_PARTICIPANT)[0]
    call(client, "POST", f"/api/v1/cases/{own}/transitions", "regulator",
         {"action": "assign", "assignee": "desk.officer"})  # fmt: skip
    listed = call(client, "GET", "/api/v1/cases", "alphatrue", limit=100000).json()
    assert {c["participant"] for c in listed} == {DA_NANG_PARTICIPANT}
    assert all("assignee" not in c for c in listed)
    assert call(client, "GET", "/api/v1/cases", "alphatrue", participant=NATIONAL_PARTICIPANT).status_code == 403
    # Another participant's case: as if it did not exist, for reading, answering and transitions.
    assert call(client, "GET", f"/api/v1/cases/{other}", "alphatrue").status_code == 404
    answer = {"note": "we fixed it"}
    assert call(client, "POST", f"/api/v1/cases/{other}/answers", "alphatrue", answer).status_code == 404
    for action in ({"action": "acknowledge"}, {"action": "resolve", "resolution": "remedied", "reason": "x"}):
        assert call(client, "POST", f"/api/v1/cases/{own}/transitions", "alphatrue", action).status_code == 403
        assert call(client, "POST", f"/api/v1/cases/{other}/transitions", "alphatrue", action).status_code == 403
    bulk = {"action": "acknowledge", "finding_ids": [own, other]}
    assert call(client, "POST", "/api/v1/cases/bulk", "alphatrue", bulk).status_code == 403
    assert call(client, "GET", "/api/v1/cases/verify", "alphatrue").status_code == 403
    # Its own case: it answers, and reads what happened without the desk's internal names.
    sent = call(client, "POST", f"/api/v1/cases/{own}/answers", "alphatrue",
                {"note": "limit lowered; see ticket 42", "filename": "remediation.txt"})  # fmt: skip
    assert sent.status_code == 200 and sent.json()["note"] == "[remediation.txt]\nlimit lowered; see ticket 42"
    too_big = call(client, "POST", f"/api/v1/cases/{own}/answers", "alphatrue", {"note": "x" * 16_001})
    assert too_big.status_code == 422
    case = call(client, "GET", f"/api/v1/cases/{own}", "alphatrue").json()
    assert case["state"] == "open" and "assignee" not in case
    assert [t["action"] for t in case["history"]] == ["assign", "answer"]
    assert "actor" not in case["history"][0] and "assignee" not in case["history"][0]
    assert case["history"][1]["note"].endswith("see ticket 42")
    assert call(client, "POST", f"/api/v1/cases/{own}/answers", "regulator", answer).status_code == 403
    denied = {d["path"] for d in History(monitored.store).denials() if d["key_name"] == "alphatrue-ops"}
    assert f"/api/v1/cases/{other}" in denied


def test_bulk_acknowledge_reports_each_case(client: TestClient, monitored: Monitored) -> None:
    chosen = ids_of(monitored, NATIONAL_PARTICIPANT)[-3:]
    assert len(chosen) == 3
    first = call(client, "POST", "/api/v1/cases/bulk", "regulator",
                 {"action": "acknowledge", "finding_ids": chosen[:2]}).json()  # fmt: skip
    assert [a["finding_id"] for a in first["applied"]] == chosen[:2] and first["refused"] == []
    second = call(client, "POST", "/api/v1/cases/bulk", "regulator",
                  {"action": "acknowledge", "finding_ids": [*chosen, "no-such-finding"]}).json()  # fmt: skip
    assert [a["finding_id"] for a in second["applied"]] == chosen[2:]
    assert [(r["finding_id"], r["status"]) for r in second["refused"]] == [
        (chosen[0], 409), (chosen[1], 409), ("no-such-finding", 404)
    ]  # fmt: skip
    acknowledged = call(client, "GET", "/api/v1/cases", "regulator", state="acknowledged",
                        participant=NATIONAL_PARTICIPANT, limit=100000).json()  # fmt: skip
    assert set(chosen) <= {c["finding_id"] for c in acknowledged}
    assert {c["state"] for c in acknowledged} == {"acknowledged"}
    too_many = {"action": "acknowledge", "finding_ids": [f"f{i}" for i in range(1001)]}
    assert call(client, "POST", "/api/v1/cases/bulk", "regulator", too_many).status_code == 422


def test_filters_by_state_assignee_and_overdue(monitored: Monitored) -> None:
    trail = CaseTrail(monitored.store.backend, monitored.store.db)
    scope = Scope()
    everything = trail.cases(scope, CaseFilter(limit=100000), DueTimes().seconds, LATER)
    # Two days on: critical cases (due after 1 day) are overdue unless resolved; breaches (3 days) are not.
    overdue = trail.cases(scope, CaseFilter(overdue=True, limit=100000), DueTimes().seconds, LATER)
    assert overdue and {c["severity"] for c in overdue} == {"critical"}
    assert {c["finding_id"] for c in overdue} == {
        c["finding_id"] for c in everything if c["severity"] == "critical" and c["state"] != "resolved"
    }
    assert all(c["overdue"] for c in overdue)
    stamp = datetime.fromisoformat(everything[0]["opened"]).replace(tzinfo=UTC)
    assert datetime.fromisoformat(everything[0]["due"]).replace(tzinfo=UTC) - stamp == timedelta(
        seconds=DueTimes().seconds(everything[0]["severity"])
    )
    finding = ids_of(monitored, NATIONAL_PARTICIPANT, "breach")[0]
    trail.append(NATIONAL_PARTICIPANT, finding, lambda _: {"action": "assign", "from_state": "open",
                 "to_state": "open", "assignee": "lan.tran"}, "sbv-desk", "regulator", LATER)  # fmt: skip
    mine = trail.cases(scope, CaseFilter(assignee="lan.tran"), DueTimes().seconds, LATER)
    assert [c["finding_id"] for c in mine] == [finding]
    unassigned = trail.cases(scope, CaseFilter(assignee="", limit=100000), DueTimes().seconds, LATER)
    assert finding not in {c["finding_id"] for c in unassigned} and len(unassigned) == len(everything) - len(
        {c["finding_id"] for c in everything if c["assignee"]} | {finding}
    )


def test_an_altered_or_removed_transition_is_detected(store: Store) -> None:
    trail = CaseTrail(store.backend, store.db)
    at = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    for i, fid in enumerate(("f1", "f2", "f1", "f3")):
        state = "acknowledged" if i == 2 else "open"
        step = {"action": "acknowledge" if fid != "f1" or i == 0 else "resolve", "from_state": "open",
                "to_state": "acknowledged"}  # fmt: skip
        if i == 2:
            step = {"action": "resolve", "from_state": state, "to_state": "resolved", "resolution": "remedied",
                    "reason": "fixed"}  # fmt: skip
        trail.append("p1", fid, lambda _, s=step: s, "sbv-desk", "regulator", at + timedelta(minutes=i))  # type: ignore[misc]
    assert trail.verify() == []
    store.backend.command(
        f"ALTER TABLE {store.db}.case_transitions UPDATE reason = 'nothing to see' WHERE seq = 3 "
        "SETTINGS mutations_sync = 2"
    )
    assert [p.describe() for p in trail.verify()] == [
        "p1 seq 3 finding f1: transition hash does not match its content (row altered)"
    ]
    store.backend.command(f"ALTER TABLE {store.db}.case_transitions DELETE WHERE seq = 3 SETTINGS mutations_sync = 2")
    found = [p.describe() for p in trail.verify()]
    assert "p1 seq 3: case transition missing (a row was removed)" in found
    store.backend.command(f"ALTER TABLE {store.db}.case_transitions DELETE WHERE seq = 4 SETTINGS mutations_sync = 2")
    assert any("newest removed" in p for p in (q.describe() for q in trail.verify()))


def test_unresolved_per_day_leaves_out_resolved_cases(monitored: Monitored) -> None:
    trail = CaseTrail(monitored.store.backend, monitored.store.db)
    since, until = datetime(2020, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC)
    before = trail.unresolved_per_day(Scope(), [NATIONAL_PARTICIPANT], since, until, ("critical",))
    listed = trail.cases(Scope(), CaseFilter(participant=NATIONAL_PARTICIPANT, severity="critical"),
                         DueTimes().seconds, LATER)  # fmt: skip
    found = [c for c in listed if c["state"] != "resolved"]
    assert sum(n for *_, n in before) == len(found) > 0
    target = next(c["finding_id"] for c in found if c["state"] == "open")
    trail.append(NATIONAL_PARTICIPANT, target, lambda _: {"action": "resolve", "from_state": "open",
                 "to_state": "resolved", "resolution": "remedied", "reason": "fixed"}, "sbv-desk", "regulator",
                 LATER)  # fmt: skip
    after = trail.unresolved_per_day(Scope(), [NATIONAL_PARTICIPANT], since, until, ("critical",))
    assert sum(n for *_, n in after) == len(found) - 1
    assert {(p, s) for p, _, s, _ in after} <= {(NATIONAL_PARTICIPANT, "critical")}
    assert trail.unresolved_per_day(Scope(frozenset({DA_NANG_PARTICIPANT})), [NATIONAL_PARTICIPANT], since, until) == []
