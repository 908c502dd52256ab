"""The HTTP API under bad and adversarial input, over a real (embedded) ClickHouse: every request gets an
answer with a reason (4xx), never a 500, bodies are size-limited, and no input crosses a tenant."""

from __future__ import annotations

import collections
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

pytest.importorskip("chdb")

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandboxwatch.api.body_limit import MAX_BODY
from sandboxwatch.api.json_body import UniqueKeyRoute
from sandboxwatch.rules_engine.json_bounds import repeated_key_reason
from sandboxwatch.store.backends import connect
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.records import FINDING_COLUMNS
from sandboxwatch.store.sql_text import quote
from tests.api_fixtures import (
    DA_NANG_PARTICIPANT,
    NATIONAL_PARTICIPANT,
    Monitored,
    api_database,
    app_over,
    auth,
    get,
)

DROP = object()  # a mutation that removes the field
EDGE_TIMES = (
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-14:00",
    "1969-12-31T23:59:59Z",
    "2106-02-07T06:28:16Z",
    "1970-01-01T00:00:00Z",
)


monitored, client, _own_database = api_database("apih", accounts=30, raise_server_exceptions=False)


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [f["finding_id"] for f in response.json()]


@pytest.mark.parametrize("edge", EDGE_TIMES)
def test_edge_times_on_findings_are_clamped_to_the_store(client: TestClient, edge: str) -> None:
    everything = ids(get(client, "/api/v1/findings", "regulator", limit=100000))
    assert everything
    early = edge < "2000"
    since = ids(get(client, "/api/v1/findings", "regulator", limit=100000, **{"from": edge}))
    until = ids(get(client, "/api/v1/findings", "regulator", limit=100000, to=edge))
    # Every stored finding lies between 2000 and 2100: an early bound keeps them all, a late one none.
    assert (since, until) == ((everything, []) if early else ([], everything))


@pytest.mark.parametrize("edge", EDGE_TIMES)
def test_edge_times_on_summaries_are_clamped_to_the_store(client: TestClient, edge: str) -> None:
    path = f"/api/v1/participants/{DA_NANG_PARTICIPANT}/summary"
    whole = get(client, path, "alphatrue", **{"from": "1970-01-01T00:00:00Z", "to": "2105-12-31T00:00:00Z"}).json()
    assert sum(whole["findings_by_severity"].values()) > 0
    early = edge < "2000"
    bounds = {"from": edge, "to": "9999-12-31T23:59:59Z"} if early else {"from": "0001-01-01T00:00:00Z", "to": edge}
    response = get(client, path, "alphatrue", **bounds)
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["findings_by_severity"] == whole["findings_by_severity"]
    assert summary["events_by_type"] == whole["events_by_type"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2025-13-01T00:00:00Z"}, "to"),
        ({"from": "2025-02-30T00:00:00Z"}, "from"),
        ({"from": "2025-01-01T00:00:00"}, "from"),  # no offset: ambiguous
        ({"from": "2025-01-01T00:00:00Z" + " " * 100}, "from"),
        ({"offset": 10**30}, "offset"),
        ({"offset": 10_000_001}, "offset"),
        ({"offset": -1}, "offset"),
        ({"limit": 0}, "limit"),
        ({"limit": 100_001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"participant": "p" * 201}, "participant"),
        ({"rule": "r" * 201}, "rule"),
        ({"q": "q" * 501}, "q"),
        ({"severity": "fatal"}, "severity"),
        ({"format": "xlsx"}, "format"),
    ],
)
def test_bad_query_parameters_get_422_naming_the_parameter(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    response = get(client, "/api/v1/findings", "regulator", **params)
    assert response.status_code == 422, response.text
    assert field in response.text


def test_bounds_themselves_are_accepted(client: TestClient) -> None:
    assert ids(get(client, "/api/v1/findings", "regulator", offset=10_000_000)) == []
    assert len(ids(get(client, "/api/v1/findings", "regulator", limit=1))) == 1
    assert get(client, "/api/v1/access-denials", "auditor", limit=100_000).status_code == 200
    assert get(client, "/api/v1/access-denials", "auditor", limit=10**30).status_code == 422
    assert get(client, "/api/v1/audit/verify", "auditor", participant="x" * 201).status_code == 422
    path = f"/api/v1/participants/{DA_NANG_PARTICIPANT}/summary"
    assert get(client, path, "alphatrue", to="2026-01-01T00:00:00Z").status_code == 422  # "from" is required
    assert get(client, "/api/v1/findings/" + "f" * 201, "regulator").status_code == 422
    long_participant = "/api/v1/participants/" + "p" * 201 + "/utilisation"
    assert get(client, long_participant, "regulator").status_code == 422


def test_oversized_bodies_are_refused_before_parsing(client: TestClient) -> None:
    path = f"/api/v1/participants/{DA_NANG_PARTICIPANT}/precheck"
    big = {"participant": DA_NANG_PARTICIPANT, "pad": "x" * MAX_BODY}
    response = client.post(path, headers=auth("alphatrue"), json=big)
    assert response.status_code == 413 and "at most 1048576 bytes" in response.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"participant": "' + DA_NANG_PARTICIPANT.encode() + b'", "pad": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    streamed = client.post(path, headers={**auth("alphatrue"), "Content-Type": "application/json"}, content=chunks())
    assert streamed.status_code == 413
    finding = ids(get(client, "/api/v1/findings", "regulator", limit=1))[0]
    note = client.post(f"/api/v1/findings/{finding}/notes", headers=auth("regulator"), json={"note": "n" * 5001})
    assert note.status_code == 422
    surrogate = b'{"status": "comment", "note": "\\ud800"}'
    odd = client.post(
        f"/api/v1/findings/{finding}/notes",
        headers={**auth("regulator"), "Content-Type": "application/json"},
        content=surrogate,
    )
    assert odd.status_code == 422 and odd.json()["detail"][0]["loc"] == ["body", "note"]  # not valid Unicode
    deep = client.post(path, headers={**auth("alphatrue"), "Content-Type": "application/json"}, content=b"[" * 100_000)
    assert 400 <= deep.status_code < 500


def base_trade(monitored: Monitored) -> dict[str, Any]:
    lines = [json.loads(line) for line in monitored.lines[DA_NANG_PARTICIPANT]]
    trade = next(e for e in lines if e["type"] == "trade")
    return dict(trade, event_id="hostile-precheck", ts=max(e["ts"] for e in lines))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", "9" * 5000),
        ("quantity", "1e999999"),
        ("quantity", "-1e999999"),
        ("quantity", "NaN"),
        ("quantity", "Infinity"),
        ("price", "1e27"),
        ("price", "1e-27"),
        ("price", 1e308),
        ("quantity", 12.5),
        ("quantity", True),
        ("quantity", None),
        ("quantity", [1, [2, [3]]]),
        ("quantity", {"a": 1}),
        ("ts", "0001-01-01T00:00:00+14:00"),
        ("ts", "9999-12-31T23:59:59-14:00"),
        ("ts", "2025-02-30T00:00:00Z"),
        ("ts", 1_700_000_000),
        ("account", "\ud800"),
        ("account", "a" * 100_000),
        ("account", ""),
        ("event_id", None),
        ("type", "not-a-type"),
        ("type", None),
        ("retracts", "some-earlier-event"),
    ],
)
def test_precheck_with_hostile_event_content_answers_200_or_422(
    client: TestClient, monitored: Monitored, field: str, value: Any
) -> None:
    event = dict(base_trade(monitored), **{field: value})
    body = json.dumps(event, allow_nan=True).encode("utf-8", errors="surrogatepass")
    response = client.post(
        f"/api/v1/participants/{DA_NANG_PARTICIPANT}/precheck",
        headers={**auth("alphatrue"), "Content-Type": "application/json"},
        content=body,
    )
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert isinstance(response.json()["would_breach"], bool)
    else:
        assert response.json()["detail"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [(DROP, "required field is missing"), (None, "required field is missing"), ("", "required field is missing"),
     (12, "must be a string"), (["alphatrue-basal-pay"], "must be a string")],
)  # fmt: skip
def test_a_precheck_event_without_a_usable_participant_is_422_not_403(
    client: TestClient, monitored: Monitored, value: Any, reason: str
) -> None:
    event = base_trade(monitored)
    if value is DROP:
        del event["participant"]
    else:
        event["participant"] = value
    for who in ("alphatrue", "regulator"):
        response = client.post(f"/api/v1/participants/{DA_NANG_PARTICIPANT}/precheck", headers=auth(who), json=event)
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == {"field": "participant", "reason": reason}
    # A well-formed event of another participant is still refused as access, not as a malformed request.
    other = dict(event, participant=NATIONAL_PARTICIPANT)
    response = client.post(
        f"/api/v1/participants/{DA_NANG_PARTICIPANT}/precheck", headers=auth("alphatrue"), json=other
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "value",
    ["2025-10-01T00:00:00Z\x00", "2025-10-01T00:00:00Z\x00garbage", "2025-10-01T00:00:00\x00Z",
     "0001-01-01T00:00:00Z\x00x", "2025-10-01T00:00:00Z\x7f", "2025-10-01T00:00:00Z\u2028",
     "2025\u201010-01T00:00:00Z"],
)  # fmt: skip
def test_control_characters_in_time_parameters_get_422(client: TestClient, value: str) -> None:
    for name in ("from", "to"):
        response = get(client, "/api/v1/findings", "regulator", **{name: value})
        assert response.status_code == 422, response.text
        assert response.json()["detail"].startswith(f"{name}: not an RFC 3339 timestamp")
    path = f"/api/v1/participants/{DA_NANG_PARTICIPANT}/summary"
    response = get(client, path, "alphatrue", **{"from": value, "to": "2026-01-01T00:00:00Z"})
    assert response.status_code == 422, response.text


def test_summary_of_an_unknown_participant_or_an_empty_period_says_no_data(client: TestClient) -> None:
    period = {"from": "2025-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"}
    unknown = get(client, "/api/v1/participants/nobody-at-all/summary", "regulator", **period)
    assert unknown.status_code == 200, unknown.text
    assert unknown.json()["compliant"] is None
    assert unknown.json()["no_data"] == "unknown participant nobody-at-all: no events, findings or licence on record"
    path = f"/api/v1/participants/{DA_NANG_PARTICIPANT}/summary"
    empty = get(client, path, "alphatrue", **{"from": "2020-01-01T00:00:00Z", "to": "2020-12-31T00:00:00Z"}).json()
    assert empty["compliant"] is None and empty["events_by_type"] == {}
    assert empty["no_data"] == f"no events of {DA_NANG_PARTICIPANT} in the period: nothing was judged"
    judged = get(client, path, "alphatrue", **period).json()
    assert judged["compliant"] is False and judged["no_data"] is None


def test_an_unreachable_store_is_503_not_500(monitored: Monitored) -> None:
    down = Store(connect("clickhouse://127.0.0.1:1/nothing"))
    app = app_over(down, monitored.licences)
    with TestClient(app, raise_server_exceptions=False) as offline:
        response = offline.get("/api/v1/participants", headers=auth("auditor"))
    assert response.status_code == 503 and "store is unavailable" in response.text


def test_hostile_parameters_never_widen_a_participant_view(client: TestClient) -> None:
    own = set(ids(get(client, "/api/v1/findings", "alphatrue", limit=100000)))
    for params in (
        {"participant": DA_NANG_PARTICIPANT + "' OR '1'='1"},
        {"q": "\\"},
        {"q": "'"},
        {"rule": "\\' OR 1=1 --"},
        {"kind": "\x00"},
        {"from": "0001-01-01T00:00:00+14:00", "to": "9999-12-31T23:59:59-14:00"},
    ):
        response = get(client, "/api/v1/findings", "alphatrue", limit=100000, **params)
        assert response.status_code in (200, 403, 422), response.text
        if response.status_code == 200:
            assert set(ids(response)) <= own
    assert NATIONAL_PARTICIPANT not in get(client, "/api/v1/participants", "alphatrue").text


def test_a_retracts_field_does_not_change_the_precheck_answer(client: TestClient, monitored: Monitored) -> None:
    path = f"/api/v1/participants/{DA_NANG_PARTICIPANT}/precheck"
    event = dict(base_trade(monitored), quantity="100000")
    plain = client.post(path, headers=auth("alphatrue"), json=event)
    retracting = client.post(path, headers=auth("alphatrue"), json=dict(event, retracts="some-earlier-event"))
    assert plain.status_code == 200 and plain.json()["would_breach"] is True
    assert retracting.json() == plain.json()


def test_denials_with_line_separator_characters_stay_readable(client: TestClient) -> None:
    odd = "x\u2028y\x85z\x1cw"
    encoded = "x%E2%80%A8y%C2%85z%1Cw"
    assert get(client, f"/api/v1/participants/{encoded}/utilisation", "alphatrue").status_code == 403
    response = get(client, "/api/v1/access-denials", "auditor")
    assert response.status_code == 200, response.text
    assert f"/api/v1/participants/{odd}/utilisation" in [d["path"] for d in response.json()]


EDGE_VALUES = [
    "1e999999", "-1e999999", "1e27", "1e-27", "9" * 5000, "NaN", "sNaN", "-0", "0x10", " 1 ",
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2025-02-30T00:00:00Z", "\ud800",
    '=HYPERLINK("x")', "' OR 1=1 --", "a" * 20_000,
]  # fmt: skip
HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(EDGE_VALUES),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
PRECHECK_FUZZ = 300


def test_fuzzed_precheck_events_get_200_or_422(client: TestClient, monitored: Monitored) -> None:
    """Hypothesis mutates a real trade (one to three fields replaced, added or dropped) and posts it as the
    participant: every answer is 200 with a boolean verdict or 422 with a reason; the counts are printed."""
    base = base_trade(monitored)
    path = f"/api/v1/participants/{DA_NANG_PARTICIPANT}/precheck"
    statuses: collections.Counter[int] = collections.Counter()
    fields = st.sampled_from([*sorted(set(base) - {"participant"}), "retracts", "extra", "quantity", "price"])
    mutation = st.lists(st.tuples(fields, st.one_of(HOSTILE_VALUES, st.just(DROP))), min_size=1, max_size=3)

    @given(mutation)
    @settings(max_examples=PRECHECK_FUZZ, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    def run(changes: list[tuple[str, Any]]) -> None:
        event = dict(base)
        for name, value in changes:
            if value is DROP:
                event.pop(name, None)
            else:
                event[name] = value
        body = json.dumps(event, allow_nan=True).encode("utf-8", errors="surrogatepass")
        response = client.post(path, headers={**auth("alphatrue"), "Content-Type": "application/json"}, content=body)
        statuses[response.status_code] += 1
        assert response.status_code in (200, 422), f"{changes!r:.300} -> {response.status_code} {response.text[:300]}"
        if response.status_code == 200:
            assert isinstance(response.json()["would_breach"], bool)
        else:
            assert response.json()["detail"]

    run()
    print(f"\nprecheck fuzz: {sum(statuses.values())} mutated events, statuses {dict(sorted(statuses.items()))}")
    assert sum(statuses.values()) >= PRECHECK_FUZZ and {200, 422} <= set(statuses)


@pytest.mark.parametrize(
    "body",
    [b'{"status": NaN, "note": "x"}', b'{"status": "comment", "note": Infinity}', b"NaN", b'{"status": 1e999}'],
)
def test_non_finite_json_numbers_in_a_body_get_422(client: TestClient, body: bytes) -> None:
    finding = ids(get(client, "/api/v1/findings", "regulator", limit=1))[0]
    headers = {**auth("regulator"), "Content-Type": "application/json"}
    response = client.post(f"/api/v1/findings/{finding}/notes", headers=headers, content=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body" and "input" not in response.json()["detail"][0]
    precheck = client.post(f"/api/v1/participants/{DA_NANG_PARTICIPANT}/precheck", headers=auth("alphatrue") | {
        "Content-Type": "application/json"}, content=body)  # fmt: skip
    assert precheck.status_code in (403, 422), precheck.text  # 403: an object without the path's participant


@pytest.mark.parametrize("literal", ["9" * 5000, "-" + "9" * 5000, "1e999999", "1" + "0" * 400 + ".5", "-0.0e-999999"])
def test_raw_json_number_literals_in_a_precheck_get_4xx(client: TestClient, monitored: Monitored, literal: str) -> None:
    body = json.dumps(base_trade(monitored))[:-1] + f', "quantity": {literal}}}'
    headers = {**auth("alphatrue"), "Content-Type": "application/json"}
    response = client.post(f"/api/v1/participants/{DA_NANG_PARTICIPANT}/precheck", headers=headers, content=body)
    assert response.status_code in (400, 422), response.text  # 400: beyond what a JSON parser reads as a number


def test_a_stored_evidence_body_that_is_not_plain_json_does_not_break_the_finding(
    client: TestClient, monitored: Monitored
) -> None:
    store = monitored.store
    original = get(client, "/api/v1/findings", "regulator", participant=DA_NANG_PARTICIPANT, limit=1).json()[0]
    when = datetime(2025, 11, 10, 3, 0, tzinfo=UTC)
    events = [("ev-bom", '\ufeff{"event_id": "ev-bom"}'), ("ev-garbage", "{not json")]
    store.backend.insert(
        "events",
        ("participant", "event_id", "type", "ts", "ts_text", "account", "body", "source", "recorded"),
        [(DA_NANG_PARTICIPANT, e, "trade", when, when.isoformat(), "a", body, "test:1", when) for e, body in events],
    )
    columns = ", ".join(FINDING_COLUMNS).replace("evidence", "['ev-bom', 'ev-garbage', 'ev-absent']")
    store.backend.command(
        f"INSERT INTO {store.db}.findings SELECT {columns.replace('finding_id', quote('odd-evidence'), 1)} "
        f"FROM {store.db}.findings WHERE finding_id = {quote(original['finding_id'])}"
    )
    detail = get(client, "/api/v1/findings/odd-evidence", "alphatrue")
    assert detail.status_code == 200, detail.text
    assert detail.json()["evidence_events"] == [
        {"event_id": "ev-bom", "event": {"event_id": "ev-bom"}, "source": "test:1"},
        {"event_id": "ev-garbage", "event": None, "raw": "{not json", "source": "test:1"},
        {"event_id": "ev-absent", "event": None},
    ]


def test_deep_bodies_are_refused_before_decoding_even_with_a_raised_recursion_limit(client: TestClient) -> None:
    """web3's py_ecc raises the recursion limit to 100,000 on import; json's C decoder then overflowed the C
    stack of the request's worker thread on 100 kB of '[' (a segfault of the whole API)."""
    path = f"/api/v1/participants/{DA_NANG_PARTICIPANT}/precheck"
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        deep = client.post(
            path, headers={**auth("alphatrue"), "Content-Type": "application/json"}, content=b"[" * 100_000
        )
    finally:
        sys.setrecursionlimit(previous)
    assert deep.status_code == 422 and "nests deeper than 32 levels" in deep.text


@pytest.mark.parametrize(
    ("duplicate", "field"),
    [
        ('"quantity": "900000"', "quantity"),
        (f'"participant": "{NATIONAL_PARTICIPANT}"', "participant"),
        ('"travel_rule": {"a": 1, "a": 2}', "travel_rule.a"),
    ],
)
def test_a_precheck_body_repeating_a_key_is_422_naming_it(
    client: TestClient, monitored: Monitored, duplicate: str, field: str
) -> None:
    """A repeated key is refused as the monitor refuses it in an event line, never judged on its last value."""
    body = json.dumps(base_trade(monitored))[:-1] + ", " + duplicate + "}"
    if field != "travel_rule.a":
        body = body.replace("{", "{" + duplicate + ", ", 1)  # the repeat: the same key before and after
    for who in ("alphatrue", "regulator"):
        response = client.post(
            f"/api/v1/participants/{DA_NANG_PARTICIPANT}/precheck",
            headers={**auth(who), "Content-Type": "application/json"},
            content=body.encode(),
        )
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert detail["field"] == field and "appears more than once" in detail["reason"], detail


def test_every_body_route_refuses_a_repeated_key_in_its_one_decoding(client: TestClient) -> None:
    """The check lives in the app's JSON decoding (not a middleware decoding each body a second time), so it
    must hold on every route, including those other modules add (cases, desk)."""
    routes = [route for route in client.app.routes if isinstance(route, APIRoute)]  # type: ignore[attr-defined]
    assert routes and all(type(route) is UniqueKeyRoute for route in routes)
    finding = ids(get(client, "/api/v1/findings", "regulator", limit=1))[0]
    headers = {**auth("regulator"), "Content-Type": "application/json"}
    for path, body in (
        (f"/api/v1/findings/{finding}/notes", b'{"status": "comment", "note": "a", "note": "b"}'),
        (f"/api/v1/cases/{finding}/transitions", b'{"action": "acknowledge", "x": {"k": 1, "k": 2}}'),
    ):
        response = client.post(path, headers=headers, content=body)
        assert response.status_code == 422, response.text
        field = "note" if path.endswith("notes") else "x.k"
        assert response.json()["detail"] == {"field": field, "reason": repeated_key_reason(field)}


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (f"/api/v1/participants/{DA_NANG_PARTICIPANT}/summary", {"from": "", "to": "2025-12-01T00:00:00Z"}),
        (f"/api/v1/participants/{DA_NANG_PARTICIPANT}/summary", {"from": "2025-10-01T00:00:00Z", "to": ""}),
        ("/api/v1/findings", {"from": ""}),
        ("/api/v1/findings", {"to": ""}),
    ],
)
def test_an_empty_time_parameter_is_422_not_no_bound(client: TestClient, path: str, params: dict[str, str]) -> None:
    """``from=`` (a client's unset variable) is not a time: never an internal error, never a silently dropped bound."""
    response = get(client, path, "regulator", **params)
    assert response.status_code == 422, response.text[:300]
    assert "not an RFC 3339 timestamp: ''" in response.text
