"""Every route of the API, called with one participant's key and the other participant's names and ids in
every place a name or id goes: no answer may carry the other participant's findings, cases or data."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("chdb")

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.api_fixtures import DA_NANG_PARTICIPANT, NATIONAL_PARTICIPANT, SECRETS, Monitored, api_database

monitored, client, _own_database = api_database("apisweep", accounts=20, raise_server_exceptions=False)

WHO = {DA_NANG_PARTICIPANT: "alphatrue", NATIONAL_PARTICIPANT: "casp"}


def finding_ids(client: TestClient, who: str) -> set[str]:
    response = client.get("/api/v1/findings", headers={"Authorization": f"Bearer {SECRETS[who]}"},
                          params={"limit": 100000})  # fmt: skip
    assert response.status_code == 200, response.text
    return {f["finding_id"] for f in response.json()}


@pytest.mark.parametrize(("me", "other"), [(DA_NANG_PARTICIPANT, NATIONAL_PARTICIPANT),
                                            (NATIONAL_PARTICIPANT, DA_NANG_PARTICIPANT)])  # fmt: skip
def test_no_route_shows_one_participant_the_others_data(client: TestClient, monitored: Monitored, me: str,
                                                         other: str) -> None:  # fmt: skip
    regulator = finding_ids(client, "regulator")
    mine = finding_ids(client, WHO[me])
    theirs = finding_ids(client, WHO[other])
    assert mine and theirs and not mine & theirs and mine | theirs <= regulator
    other_id = sorted(theirs)[0]
    headers = {"Authorization": f"Bearer {SECRETS[WHO[me]]}"}
    fill = {"participant": other, "finding_id": other_id}
    query = {"participant": other, "limit": "100000", "from": "2000-01-01T00:00:00Z",
             "to": "2100-01-01T00:00:00Z", "q": other_id[:8]}  # fmt: skip
    calls = 0
    for route in client.app.routes:  # type: ignore[attr-defined]
        if not isinstance(route, APIRoute):
            continue
        path = route.path_format.format(**{k: fill[k] for k in route.param_convertors or {}})
        for method in route.methods or ():
            for params in ({}, query, {"format": "csv", **query}):
                body: Any = None
                if method == "POST":
                    body = {"participant": other, "finding_ids": [other_id], "to": "closed", "status": "ack",
                            "note": "x", "answer": "x", "event_id": "x", "type": "trade"}  # fmt: skip
                response = client.request(method, path, headers=headers, params=params,
                                          content=json.dumps(body) if body else None)  # fmt: skip
                calls += 1
                assert response.status_code < 500, (method, path, params, response.text)
                text = response.text
                # The id the caller named may be echoed in a refusal; any other of theirs is a leak.
                leaked = [f for f in theirs if f in text and (f != other_id or response.status_code < 400)]
                assert not leaked, (method, path, params, response.status_code, leaked[:3])
                if method == "POST":  # nothing of theirs may be changed or judged with my key
                    assert response.status_code in (403, 404, 422), (path, params, response.text[:300])
                if response.status_code == 200:
                    assert other not in text or path.endswith(("/precheck",)), (method, path, params, text[:300])
    print(f"{calls} calls with {me}'s key naming {other}: nothing of {other} answered")
    assert calls > 40
