"""The regulators' desk routes over a real (embedded) ClickHouse: plain-language limits, the overview, finding
text per language and the participant self-check upload; each with role scoping (a participant never sees
another's data) and bad input (4xx, never 500)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("chdb")

from fastapi.testclient import TestClient

from sandboxwatch.api.self_check_upload import MAX_UPLOAD
from sandboxwatch.cli import main
from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.store.clickhouse_store import Store
from tests.api_fixtures import (
    DA_NANG_PARTICIPANT,
    NATIONAL_PARTICIPANT,
    Monitored,
    api_database,
    app_over,
    auth,
    get,
)
from tests.helpers import DA_NANG, NATIONAL

WINDOW = {"from": "2025-11-01T00:00:00+07:00", "to": "2025-11-14T23:59:59+07:00"}
UPLOAD = f"/api/v1/participants/{DA_NANG_PARTICIPANT}/self-check"
RESERVE_CSV = (
    "event_id,type,participant,ts,asset,custody_balance,client_liabilities\n"
    f"csv-r1,reserve,{DA_NANG_PARTICIPANT},2025-11-10T12:00:30+07:00,USDT,952,1000\n"
)


monitored, client, _own_database = api_database("desk")


def upload(client: TestClient, who: str, body: bytes | str, path: str = UPLOAD, **params: Any) -> Any:
    return client.post(path, headers=auth(who), params=params, content=body)


# Plain-language limits


def test_limits_in_plain_words_in_both_languages(client: TestClient) -> None:
    path = f"/api/v1/participants/{NATIONAL_PARTICIPANT}/limits"
    english = {(r["rule"], r["limit"]): r for r in get(client, path, "regulator").json()}
    capital = english[("capital", "charter_capital_vnd")]
    assert capital["text"] == "holds 5,000bn of the 10,000bn VND required charter capital (50%)"
    assert (capital["direction"], capital["band"], capital["level"]) == ("minimum", "breach", "0.5")
    assert capital["clause"].startswith("Resolution 05/2025/NQ-CP")
    foreign = english[("capital", "foreign_ownership_pct")]
    assert foreign["text"] == "foreign ownership 24.5% of at most 49% permitted (50% of the cap)"
    assert (foreign["direction"], foreign["band"]) == ("maximum", "ok")
    reserves = english[("reserves", "min_ratio:USDT")]
    assert reserves["text"] == "USDT reserves cover 105% of client liabilities; licence requires 100%"
    assert reserves["band"] == "near"  # within the alerting margin of the licence's minimum
    vietnamese = get(client, path, "regulator", lang="vi").json()
    assert vietnamese[0]["text"] == "có 5.000 tỷ trên 10.000 tỷ VND vốn điều lệ tối thiểu (50%)"
    by_header = client.get(path, headers={**auth("regulator"), "Accept-Language": "vi-VN,vi;q=0.9"}).json()
    assert by_header == vietnamese
    own = get(client, f"/api/v1/participants/{DA_NANG_PARTICIPANT}/limits", "alphatrue").json()
    users = next(r for r in own if r["rule"] == "users")
    # One account past the cap of 10,000: a breach, and not rounded onto the cap.
    assert users["text"] == "10,001 verified customers of at most 10,000 allowed (100.01% of the cap)"
    assert users["band"] == "breach"


def test_limits_are_scoped_and_bad_input_is_refused(client: TestClient) -> None:
    assert get(client, f"/api/v1/participants/{NATIONAL_PARTICIPANT}/limits", "alphatrue").status_code == 403
    assert get(client, "/api/v1/participants/nobody/limits", "regulator").status_code == 404
    assert get(client, f"/api/v1/participants/{NATIONAL_PARTICIPANT}/limits", "regulator", lang="fr").status_code == 422
    assert client.get(f"/api/v1/participants/{NATIONAL_PARTICIPANT}/limits").status_code == 401


# Overview


def test_overview_side_by_side_for_a_regulator(client: TestClient) -> None:
    body = get(client, "/api/v1/overview", "regulator", **WINDOW).json()
    assert [p["participant"] for p in body["participants"]] == [DA_NANG_PARTICIPANT, NATIONAL_PARTICIPANT]
    assert body["days"][0] == "2025-11-01" and body["days"][-1] == "2025-11-14" and len(body["days"]) == 14
    da_nang = body["participants"][0]
    per_day = dict(
        zip(
            body["days"],
            zip(*(da_nang["findings_per_day"][s] for s in ("warning", "breach", "critical")), strict=True),
            strict=True,
        )
    )
    assert per_day["2025-11-09"] == (0, 2, 0)
    assert per_day["2025-11-10"] == (1, 11, 2)
    assert per_day["2025-11-11"] == (1, 2, 0)
    assert da_nang["findings_total"] == 19
    ages = {item["bucket"]: item for item in da_nang["open_by_age"]}
    assert ages["d1_7"] | {} == {"bucket": "d1_7", "label": "1 to 7 days", "warning": 2, "breach": 15,
                                  "critical": 2, "total": 19}  # fmt: skip
    assert ages["d0_1"]["total"] == ages["d7_30"]["total"] == ages["d30_plus"]["total"] == 0
    assert body["open_basis"] == "cases not resolved"
    limits = {(item["rule"], item["limit"]): item for item in da_nang["limits"]}
    users = limits[("users", "max")]
    assert users["clause"] == "customer cap"
    assert [(s["day"], s["share"], s["band"]) for s in users["series"]] == [
        ("2025-11-08", "0.0001", "ok"),
        ("2025-11-09", "0.0002", "ok"),
        ("2025-11-10", "0.0072", "ok"),
        ("2025-11-11", "1.0001", "breach"),
    ]
    assert limits[("reserves", "min_ratio:USDT")]["clause"] == "custody of client assets"


def test_a_resolved_case_leaves_the_open_items_and_a_reopened_one_returns(client: TestClient) -> None:
    def open_breaches() -> int:
        body = get(client, "/api/v1/overview", "regulator", **WINDOW).json()
        return sum(item["breach"] for item in body["participants"][0]["open_by_age"])

    before = open_breaches()
    finding = next(
        f
        for f in get(client, "/api/v1/findings", "regulator", participant=DA_NANG_PARTICIPANT, **WINDOW).json()
        if f["severity"] == "breach"
    )
    path = f"/api/v1/cases/{finding['finding_id']}/transitions"
    resolve = {"action": "resolve", "resolution": "remedied", "reason": "capital topped up"}
    assert client.post(path, json=resolve, headers=auth("regulator")).status_code == 200
    assert open_breaches() == before - 1
    reopen = {"action": "reopen", "reason": "resolved by mistake"}
    assert client.post(path, json=reopen, headers=auth("regulator")).status_code == 200
    assert open_breaches() == before


def test_overview_in_vietnamese_has_vietnamese_dates_and_labels(client: TestClient) -> None:
    body = get(client, "/api/v1/overview", "regulator", lang="vi", **WINDOW).json()
    assert body["language"] == "vi"
    assert body["day_labels"][0] == "01/11/2025" and body["day_labels"][-1] == "14/11/2025"
    national = body["participants"][1]
    assert national["open_by_age"][1]["label"] == "1 đến 7 ngày"
    texts = {item["limit"]: item["text"] for item in national["limits"]}
    assert texts["charter_capital_vnd"] == "có 5.000 tỷ trên 10.000 tỷ VND vốn điều lệ tối thiểu (50%)"


def test_overview_shows_a_participant_only_its_own(client: TestClient) -> None:
    body = get(client, "/api/v1/overview", "alphatrue", **WINDOW).json()
    assert [p["participant"] for p in body["participants"]] == [DA_NANG_PARTICIPANT]
    refused = get(client, "/api/v1/overview", "alphatrue", participant=NATIONAL_PARTICIPANT, **WINDOW)
    assert refused.status_code == 403
    casp = get(client, "/api/v1/overview", "casp").json()
    assert [p["participant"] for p in casp["participants"]] == [NATIONAL_PARTICIPANT]
    # The default window ends at the latest event not dated in the future (the simulated day's outliers
    # sit in 2028-2030); it is 30 days long.
    assert len(casp["days"]) == 30


@pytest.mark.parametrize(
    "params",
    [
        {"from": "yesterday"},
        {"to": "2025-13-45T00:00:00Z"},
        {"from": "2025-11-14T00:00:00Z", "to": "2025-11-01T00:00:00Z"},
        {"from": "2024-01-01T00:00:00Z", "to": "2025-11-01T00:00:00Z"},
        {"lang": "de"},
        {"participant": "p" * 201},
        {"from": "x" * 65},
        {"from": ""},  # an unset variable is not "no bound"
        {"to": ""},
    ],
)
def test_overview_bad_input_is_422(client: TestClient, params: dict[str, str]) -> None:
    assert get(client, "/api/v1/overview", "regulator", **params).status_code == 422


# Finding text per language


def test_findings_carry_a_localised_text_only_when_asked(client: TestClient) -> None:
    plain = get(client, "/api/v1/findings", "regulator", kind="structuring").json()
    assert plain and all("message_text" not in f for f in plain)
    localised = get(client, "/api/v1/findings", "regulator", kind="structuring", lang="vi").json()
    assert [f["finding_id"] for f in localised] == [f["finding_id"] for f in plain]
    assert [f["message"] for f in localised] == [f["message"] for f in plain]  # the stored text is unchanged
    national = next(f for f in localised if f["participant"] == NATIONAL_PARTICIPANT)
    assert (
        national["message_text"] == "bad-structuring đã chia nhỏ giao dịch dưới ngưỡng 400.000.000 (tổng 400.002.999)"
    )
    one = get(client, f"/api/v1/findings/{national['finding_id']}", "regulator", lang="en").json()
    assert (
        one["message_text"]
        == "bad-structuring split transactions under the threshold of 400,000,000 (total 400,002,999)"
    )
    verified = get(client, "/api/v1/audit/verify", "auditor").json()
    assert verified["intact"] is True


# Self-check upload


def test_upload_gives_the_same_findings_as_sandboxwatch_check(
    client: TestClient, monitored: Monitored, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "\n".join(monitored.lines[DA_NANG_PARTICIPANT]) + "\n"
    events_before = monitored.store.count("events")
    response = upload(client, "alphatrue", text, name="day.jsonl")
    assert response.status_code == 200
    result = response.json()
    (tmp_path / "day.jsonl").write_text(text)
    capsys.readouterr()
    assert main(["check", "--licence", str(DA_NANG), "--events", str(tmp_path / "day.jsonl")]) == 1
    cli = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [f["finding_id"] for f in result["findings"]] == [f["finding_id"] for f in cli]
    assert len(cli) == 20 and result["failed"] is True and result["events"] == 11893
    assert result["findings_by_severity"] == {"warning": 2, "breach": 15, "critical": 3}
    assert (result["stored"], result["not_stored"]) == (0, None)
    assert monitored.store.count("events") == events_before  # nothing stored unless asked
    assert result["summary"] == "11,893 events checked against DN-136-PILOT-01: 20 findings, 0 invalid lines"


def test_csv_upload_in_vietnamese(client: TestClient) -> None:
    response = upload(client, "alphatrue", RESERVE_CSV, name="reserves.csv", lang="vi")
    assert response.status_code == 200
    result = response.json()
    assert result["format"] == "csv"
    assert [(f["kind"], f["severity"]) for f in result["findings"]] == [("reserve_coverage", "critical")]
    assert result["findings"][0]["message_text"] == (
        "tài sản lưu ký chỉ đáp ứng 95,2% nghĩa vụ với khách hàng; giấy phép yêu cầu 100%"
    )
    assert result["summary"] == "1 sự kiện được kiểm tra theo DN-136-PILOT-01: 1 phát hiện, 0 dòng không hợp lệ"


def test_upload_refuses_other_participants_lines_with_their_numbers(client: TestClient, monitored: Monitored) -> None:
    own = monitored.lines[DA_NANG_PARTICIPANT][:6]
    other = monitored.lines[NATIONAL_PARTICIPANT][:2]
    lines = [own[0], other[0], own[1], own[2], other[1], *own[3:]]
    response = upload(client, "alphatrue", "\n".join(lines))
    assert response.status_code == 422
    assert response.json()["detail"]["lines"] == [2, 5] and response.json()["detail"]["count"] == 2


def test_upload_reports_bad_lines_and_refuses_a_file_with_nothing_usable(
    client: TestClient, monitored: Monitored
) -> None:
    lines = [*monitored.lines[DA_NANG_PARTICIPANT][:3], '{"event_id": "x", "type": "trade"', "not json at all"]
    result = upload(client, "alphatrue", "\n".join(lines)).json()
    assert [e["line"] for e in result["errors"]] == [4, 5] and result["invalid"] == 2
    for body in (b"\x00\xff\xfe garbage \x80", b"{}\n[]\n", b"a,b\n1,2\n"):
        refused = upload(client, "alphatrue", body)
        assert refused.status_code == 422, body
    assert upload(client, "alphatrue", b"  \n").status_code == 422
    assert upload(client, "alphatrue", RESERVE_CSV, as_of="tomorrow").status_code == 422
    assert upload(client, "alphatrue", RESERVE_CSV, format="xml").status_code == 422


def test_upload_is_scoped_by_role_and_participant(client: TestClient) -> None:
    assert upload(client, "auditor", RESERVE_CSV).status_code == 403
    national = f"/api/v1/participants/{NATIONAL_PARTICIPANT}/self-check"
    assert upload(client, "alphatrue", RESERVE_CSV, path=national).status_code == 403
    # A regulator may check a participant's file, but never store events in its name.
    assert upload(client, "regulator", RESERVE_CSV).status_code == 200
    assert upload(client, "regulator", RESERVE_CSV, store="true").status_code == 403
    assert upload(client, "regulator", RESERVE_CSV, path="/api/v1/participants/nobody/self-check").status_code == 404


def test_upload_size_limit(client: TestClient) -> None:
    # Above the API's 1 MiB body limit but under the upload's 20 MiB: accepted.
    line = RESERVE_CSV.splitlines()[1]
    rows = [line.replace("csv-r1", f"csv-r{i}") for i in range(2_000_000 // len(line) + 1)]
    body = (RESERVE_CSV.splitlines()[0] + "\n" + "\n".join(rows) + "\n").encode()
    assert len(body) > 2_000_000
    accepted = upload(client, "alphatrue", body)
    assert accepted.status_code == 200 and accepted.json()["events"] == len(rows)
    too_big = upload(client, "alphatrue", b"x" * (MAX_UPLOAD + 1))
    assert too_big.status_code == 413
    # Elsewhere the 1 MiB limit still holds.
    big_note = client.post("/api/v1/findings/x/notes", headers=auth("regulator"), content=b"x" * (1024 * 1024 + 1))
    assert big_note.status_code == 413


def test_upload_stores_only_when_asked_and_only_a_clean_jsonl_file(store: Store) -> None:
    licences = {DA_NANG_PARTICIPANT: load_licence(DA_NANG), NATIONAL_PARTICIPANT: load_licence(NATIONAL)}
    app = app_over(store, licences, refresh_s=0)
    lines = [
        json.dumps({"event_id": f"up-{i}", "type": "reserve", "participant": DA_NANG_PARTICIPANT,
                    "ts": f"2025-11-1{i}T12:00:00+07:00", "asset": "USDT", "custody_balance": "900",
                    "client_liabilities": "1000"})
        for i in range(3)
    ]  # fmt: skip
    with TestClient(app) as client:
        refused = upload(client, "alphatrue", "\n".join([*lines, "broken"]), store="true").json()
        assert refused["stored"] == 0 and "invalid lines" in refused["not_stored"]
        as_csv = upload(client, "alphatrue", RESERVE_CSV, store="true").json()
        assert as_csv["stored"] == 0 and "only JSONL" in as_csv["not_stored"]
        assert store.count("events") == 0
        stored = upload(client, "alphatrue", "\n".join(lines), store="true", name="reserves.jsonl").json()
        assert stored["stored"] == 3 and stored["not_stored"] is None
        again = upload(client, "alphatrue", "\n".join(lines), store="true").json()
        assert again["stored"] == 0  # idempotent: the store keeps each event once
        kept = store.stored_events(DA_NANG_PARTICIPANT)
        assert sorted(r.event.event_id for r in kept) == ["up-0", "up-1", "up-2"]
        # The stored events are the participant's own: the live state reads them (the last one still waits
        # in the engine's reorder buffer, as it would in the monitor).
        assert {r.source for r in kept} == {f"upload:{DA_NANG_PARTICIPANT}:reserves.jsonl:{n}" for n in (1, 2, 3)}
        limits = get(client, f"/api/v1/participants/{DA_NANG_PARTICIPANT}/limits", "alphatrue").json()
        reserves = next(item for item in limits if item["rule"] == "reserves")
        assert reserves["text"] == "USDT reserves cover 90% of client liabilities; licence requires 100%"
        assert reserves["band"] == "breach"


def test_the_chart_library_is_served_from_the_package_with_its_licence(client: TestClient) -> None:
    script = client.get("/console/vendor/uplot/uPlot.iife.min.js")
    assert script.status_code == 200 and b"uPlot" in script.content
    assert client.get("/console/vendor/uplot/uPlot.min.css").status_code == 200
    assert "MIT License" in client.get("/console/vendor/uplot/LICENSE").text
    page = client.get("/").text
    assert "/console/vendor/uplot/uPlot.iife.min.js" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from a CDN at run time
    for language in ("en", "vi"):
        assert client.get(f"/console/i18n/{language}.json").json()["ui.tab.overview"]


def test_an_upload_with_an_empty_as_of_is_422(client: TestClient, monitored: Monitored) -> None:
    """As ``check --as-of ""``: an unset variable must not move the deadlines to the latest event silently."""
    text = "\n".join(monitored.lines[DA_NANG_PARTICIPANT][:50]) + "\n"
    response = upload(client, "alphatrue", text, name="day.jsonl", as_of="")
    assert response.status_code == 422, response.text[:300]
    assert "as_of: not an RFC 3339 timestamp: ''" in response.text
