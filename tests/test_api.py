"""The HTTP API over a real (embedded) ClickHouse: roles, tenancy (tests try to cross it), exports,
summaries, evidence, notes, pre-checks and the audit endpoint."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

pytest.importorskip("chdb")

from fastapi.testclient import TestClient

from sandboxwatch.api.keys import KeyFileError, load_keys
from sandboxwatch.store.history import History
from tests.api_fixtures import (
    DA_NANG_PARTICIPANT,
    NATIONAL_PARTICIPANT,
    Monitored,
    api_database,
    get,
    post,
)

monitored, client, _own_database = api_database("api")


def denials(monitored: Monitored) -> list[dict[str, Any]]:
    return History(monitored.store).denials()


def test_missing_or_unknown_key_is_refused_and_logged(client: TestClient, monitored: Monitored) -> None:
    assert get(client, "/api/v1/findings", None).status_code == 401
    response = client.get("/api/v1/findings", headers={"Authorization": "Bearer not-a-key"})
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    reasons = [d["reason"] for d in denials(monitored)]
    assert "unknown API key" in reasons and any(r.startswith("no API key") for r in reasons)


def test_regulator_and_auditor_see_every_participant(client: TestClient, monitored: Monitored) -> None:
    for who in ("regulator", "auditor"):
        assert get(client, "/api/v1/participants", who).json() == [DA_NANG_PARTICIPANT, NATIONAL_PARTICIPANT]
        seen = {f["participant"] for f in get(client, "/api/v1/findings", who, limit=100000).json()}
        assert seen == {DA_NANG_PARTICIPANT, NATIONAL_PARTICIPANT}
    total = len(get(client, "/api/v1/findings", "auditor", limit=100000).json())
    assert total == monitored.store.count("findings")


def test_a_participant_sees_only_its_own_data(client: TestClient) -> None:
    assert get(client, "/api/v1/participants", "alphatrue").json() == [DA_NANG_PARTICIPANT]
    own = get(client, "/api/v1/findings", "alphatrue", limit=100000).json()
    assert own and {f["participant"] for f in own} == {DA_NANG_PARTICIPANT}
    assert get(client, "/api/v1/me", "casp").json() == {
        "name": "casp-ops", "role": "participant", "participant": NATIONAL_PARTICIPANT,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/api/v1/findings", {"participant": NATIONAL_PARTICIPANT}),
        ("GET", "/api/v1/findings", {"participant": "x' OR '1'='1"}),
        ("GET", f"/api/v1/participants/{NATIONAL_PARTICIPANT}/summary", {"from": "2025-01-01T00:00:00Z",
                                                                          "to": "2030-01-01T00:00:00Z"}),
        ("GET", f"/api/v1/participants/{NATIONAL_PARTICIPANT}/utilisation", {}),
        ("GET", "/api/v1/access-denials", {}),
        ("GET", "/api/v1/audit/verify", {}),
    ],
)  # fmt: skip
def test_crossing_tenants_or_roles_is_refused_and_logged(
    client: TestClient, monitored: Monitored, method: str, path: str, params: dict[str, str]
) -> None:
    before = len(denials(monitored))
    response = get(client, path, "alphatrue", **params)
    assert response.status_code == 403, response.text
    assert NATIONAL_PARTICIPANT not in response.text.replace(f"participant {NATIONAL_PARTICIPANT!r}", "")
    logged = denials(monitored)
    assert len(logged) == before + 1 and logged[0]["key_name"] == "alphatrue-ops" and logged[0]["path"] == path


def test_another_tenants_finding_is_not_found_and_the_attempt_is_logged(
    client: TestClient, monitored: Monitored
) -> None:
    theirs = get(client, "/api/v1/findings", "regulator", participant=NATIONAL_PARTICIPANT, limit=1).json()[0]
    before = len(denials(monitored))
    response = get(client, f"/api/v1/findings/{theirs['finding_id']}", "alphatrue")
    assert response.status_code == 404 and theirs["message"] not in response.text
    assert len(denials(monitored)) == before + 1


def test_hostile_search_text_stays_inside_the_tenant(client: TestClient) -> None:
    for text in ("' OR 1=1 --", "\\' OR participant != '", "%' UNION SELECT 1 --"):
        rows = get(client, "/api/v1/findings", "alphatrue", q=text, limit=100000).json()
        assert all(r["participant"] == DA_NANG_PARTICIPANT for r in rows)


def test_filters_by_rule_severity_and_time(client: TestClient) -> None:
    rows = get(client, "/api/v1/findings", "regulator", participant=DA_NANG_PARTICIPANT, severity="breach").json()
    assert rows and {r["severity"] for r in rows} == {"breach"}
    rule = rows[0]["rule"]
    by_rule = get(client, "/api/v1/findings", "regulator", rule=rule, participant=DA_NANG_PARTICIPANT).json()
    assert by_rule and {r["rule"] for r in by_rule} == {rule}
    assert get(client, "/api/v1/findings", "regulator", **{"from": "2099-01-01T00:00:00Z"}).json() == []
    bad = get(client, "/api/v1/findings", "regulator", **{"from": "yesterday"})
    assert bad.status_code == 422 and "from" in bad.text


def test_finding_detail_carries_its_evidence_events(client: TestClient, monitored: Monitored) -> None:
    rows = get(client, "/api/v1/findings", "auditor", participant=DA_NANG_PARTICIPANT, kind="max_transaction_value")
    finding = rows.json()[0]
    detail = get(client, f"/api/v1/findings/{finding['finding_id']}", "alphatrue").json()
    assert detail["evidence"] == finding["evidence"]
    events = {e["event_id"]: e["event"] for e in detail["evidence_events"]}
    assert set(events) == set(finding["evidence"]) and all(events.values())
    original = {json.loads(line)["event_id"]: json.loads(line) for line in monitored.lines[DA_NANG_PARTICIPANT]}
    assert all(events[e] == original[e] for e in events)


def test_only_regulators_annotate_findings(client: TestClient, monitored: Monitored) -> None:
    finding = get(client, "/api/v1/findings", "regulator", limit=1).json()[0]
    path = f"/api/v1/findings/{finding['finding_id']}/notes"
    for who in ("auditor", "alphatrue"):
        assert post(client, path, who, {"status": "closed", "note": "nothing"}).status_code == 403
    added = post(client, path, "regulator", {"status": "acknowledged", "note": "called the compliance officer"})
    assert added.status_code == 200, added.text
    notes = get(client, f"/api/v1/findings/{finding['finding_id']}", "auditor").json()["notes"]
    assert [(n["author"], n["status"], n["note"]) for n in notes] == [
        ("sbv-desk", "acknowledged", "called the compliance officer")
    ]


def test_exports_as_csv_and_parquet_match_the_json(client: TestClient) -> None:
    import csv

    import pyarrow.parquet as pq

    params = {"participant": DA_NANG_PARTICIPANT, "limit": 100000}
    listed = get(client, "/api/v1/findings", "auditor", **params).json()
    csv_response = get(client, "/api/v1/findings", "auditor", format="csv", **params)
    assert csv_response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_response.text)))
    assert [r["finding_id"] for r in rows] == [f["finding_id"] for f in listed]
    assert rows[0]["evidence"] == ";".join(listed[0]["evidence"])
    parquet = get(client, "/api/v1/findings", "auditor", format="parquet", **params)
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column("finding_id").to_pylist() == [f["finding_id"] for f in listed]
    assert table.column("evidence").to_pylist()[0] == listed[0]["evidence"]
    assert str(table.schema.field("observed").type) == "string"  # amounts stay exact decimal text


def test_compliance_summary_for_a_period(client: TestClient, monitored: Monitored) -> None:
    period = {"from": "2025-01-01T00:00:00Z", "to": "2030-12-31T00:00:00Z"}
    summary = get(client, f"/api/v1/participants/{DA_NANG_PARTICIPANT}/summary", "alphatrue", **period).json()
    assert summary["compliant"] is False
    assert sum(summary["findings_by_severity"].values()) == len(
        [f for f in get(client, "/api/v1/findings", "regulator", participant=DA_NANG_PARTICIPANT, limit=100000).json()]
    )
    assert sum(summary["events_by_type"].values()) > 0 and summary["first_event"] <= summary["last_event"]


def test_precheck_answers_on_the_live_state_without_changing_it(client: TestClient, monitored: Monitored) -> None:
    lines = [json.loads(line) for line in monitored.lines[DA_NANG_PARTICIPANT]]
    trade = next(e for e in lines if e["type"] == "trade")
    big = dict(trade, event_id="precheck-1", quantity="100000", ts=max(e["ts"] for e in lines))
    path = f"/api/v1/participants/{DA_NANG_PARTICIPANT}/precheck"
    first = post(client, path, "alphatrue", big).json()
    assert first["would_breach"] is True
    assert "max_transaction_value" in {f["kind"] for f in first["findings"]}
    assert post(client, path, "alphatrue", big).json() == first  # the state did not take the trial event
    small = dict(big, event_id="precheck-2", quantity="1")
    assert "max_transaction_value" not in {f["kind"] for f in post(client, path, "alphatrue", small).json()["findings"]}
    other = post(client, f"/api/v1/participants/{NATIONAL_PARTICIPANT}/precheck", "alphatrue", big)
    assert other.status_code == 403
    mismatched = post(client, path, "alphatrue", dict(big, participant=NATIONAL_PARTICIPANT))
    assert mismatched.status_code == 403
    broken = post(client, path, "alphatrue", dict(big, quantity=12.5))
    assert broken.status_code == 422 and broken.json()["detail"]["field"] == "quantity"
    assert post(client, path, "auditor", big).status_code == 403
    # A value past the parser's bounds is refused with the field and the bound, never a server error.
    poison = post(client, path, "alphatrue", dict(big, event_id="precheck-poison", quantity="1e999999"))
    assert poison.status_code == 422 and poison.json()["detail"]["field"] == "quantity"


def test_utilisation_and_audit_verify(client: TestClient) -> None:
    limits = get(client, f"/api/v1/participants/{DA_NANG_PARTICIPANT}/utilisation", "alphatrue").json()
    assert {(item["rule"], item["limit"]) for item in limits} == {("users", "max"), ("reserves", "min_ratio:USDT")}
    # The simulated day opens one account past the licence's cap of 10,000.
    assert {"rule": "users", "limit": "max", "share": "1.0001"} in limits
    verified = get(client, "/api/v1/audit/verify", "auditor").json()
    assert verified["intact"] is True and set(verified["heads"]) == {DA_NANG_PARTICIPANT, NATIONAL_PARTICIPANT}
    assert "archived outside" in verified["not_checked"]  # says what it cannot see without archived heads


def test_audit_verify_against_archived_heads(client: TestClient) -> None:
    current = get(client, "/api/v1/audit/verify", "auditor").json()["heads"]
    same = post(client, "/api/v1/audit/verify", "auditor", current)
    assert same.status_code == 200 and same.json()["intact"] is True and "not_checked" not in same.json()
    moved = {**current, DA_NANG_PARTICIPANT: {"seq": current[DA_NANG_PARTICIPANT]["seq"], "entry_hash": "f" * 64}}
    rewritten = post(client, "/api/v1/audit/verify", "regulator", moved).json()
    assert rewritten["intact"] is False
    assert rewritten["problems"] == [
        f"{DA_NANG_PARTICIPANT} seq {current[DA_NANG_PARTICIPANT]['seq']}: does not reach the published chain head "
        "(chain rewritten)"
    ]
    beyond = {DA_NANG_PARTICIPANT: {"seq": current[DA_NANG_PARTICIPANT]["seq"] + 5, "entry_hash": "a" * 64}}
    assert post(client, "/api/v1/audit/verify", "auditor", beyond).json()["intact"] is False  # a cut tail
    zero, short = {"p": {"seq": 0, "entry_hash": "a" * 64}}, {"p": {"seq": 1, "entry_hash": "x"}}
    bad_heads: list[Any] = [zero, short, [], {"p": 1}]
    for bad in bad_heads:
        assert post(client, "/api/v1/audit/verify", "auditor", bad).status_code == 422
    assert post(client, "/api/v1/audit/verify", "alphatrue", current).status_code == 403


def test_openapi_documents_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/api/v1/findings", "/api/v1/findings/{finding_id}", "/api/v1/participants/{participant}/summary",
                 "/api/v1/participants/{participant}/precheck", "/api/v1/audit/verify"):  # fmt: skip
        assert path in paths and all(op.get("summary") for op in paths[path].values())
    assert "text/csv" in paths["/api/v1/findings"]["get"]["responses"]["200"]["content"]


def test_key_file_mistakes_are_named(tmp_path: Any) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n  - {name: a, role: participant, sha256: " + "a" * 64 + "}\n")
    with pytest.raises(KeyFileError, match=r"keys\[0\]: 'participant' is required"):
        load_keys(path)
    path.write_text("keys:\n  - {name: a, role: regulator, sha256: abc}\n")
    with pytest.raises(KeyFileError, match="64-hex-digit"):
        load_keys(path)
    path.write_text("keys:\n  - {name: a, role: regulator, sha256: " + "b" * 64 + "}\n")
    assert len(load_keys(path)) == 1
