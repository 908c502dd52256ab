"""Schemathesis against the API's own OpenAPI document, with each role's key, over a real (embedded)
ClickHouse: requests generated to fit the schema (positive) and to break it (negative), for every operation.
The properties asserted are the product's: no request, however malformed, gets a server error (5xx), and
nothing a participant's key gets back names the other participant.
Path parameters are drawn partly from real participants and findings so generated requests also reach the
code behind the tenancy checks, not only the 403/404 in front of it. The counts are printed."""

from __future__ import annotations

import collections
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("chdb")

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.core.result import Err, Ok
from schemathesis.generation import GenerationMode

from sandboxwatch.store.backends import EmbeddedBackend
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.history import FindingFilter, History, Scope
from tests.api_fixtures import DA_NANG_PARTICIPANT, NATIONAL_PARTICIPANT, SECRETS, app_over, monitored_days

DATABASE = "apist" + uuid.uuid4().hex[:8]
ROLES = {"regulator": "regulator", "auditor": "auditor", "participant": "alphatrue"}
EXAMPLES = 10  # per operation, role and mode: 14 operations x 3 roles x 2 modes x 10 = 840 requests at most


@dataclass
class Tally:
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    server_errors: list[str] = field(default_factory=list)
    unbreakable: set[str] = field(default_factory=set)
    leaks: list[str] = field(default_factory=list)  # another participant's data in a participant key's answer


@pytest.fixture(scope="module")
def app(backend: EmbeddedBackend) -> Iterator[FastAPI]:
    backend.database = DATABASE
    store = Store(backend)
    store.migrate()
    monitored = monitored_days(store, accounts=20)
    yield app_over(store, monitored.licences)


@pytest.fixture(autouse=True)
def _own_database(backend: EmbeddedBackend) -> None:
    backend.database = DATABASE


def fuzz(operation: Any, mode: GenerationMode, role: str, real_ids: list[str], tally: Tally) -> None:
    """``EXAMPLES`` generated requests for one operation, as one role."""
    secret = SECRETS[ROLES[role]]
    strategy = st.tuples(
        operation.as_strategy(generation_mode=mode),
        st.sampled_from([None, DA_NANG_PARTICIPANT, NATIONAL_PARTICIPANT]),
        st.sampled_from([None, *real_ids]),
    )

    @given(strategy)
    @settings(
        max_examples=EXAMPLES, database=None, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    def run(drawn: tuple[Any, str | None, str | None]) -> None:
        case, participant, finding_id = drawn
        path_parameters = case.path_parameters or {}
        if participant and "participant" in path_parameters:
            path_parameters["participant"] = participant
            if isinstance(case.body, dict):
                case.body["participant"] = participant
        if finding_id and "finding_id" in path_parameters:
            path_parameters["finding_id"] = finding_id
        response = case.call(headers={**(case.headers or {}), "Authorization": f"Bearer {secret}"})
        tally.statuses[response.status_code] += 1
        if role == "participant" and response.status_code < 300 and NATIONAL_PARTICIPANT in response.text:
            tally.leaks.append(f"{case.method} {case.formatted_path} query={case.query!r} -> {response.text[:200]}")
        if response.status_code >= 500:
            tally.server_errors.append(
                f"{role} {case.method} {case.formatted_path} query={case.query!r} body={case.body!r:.200}"
                f" -> {response.status_code} {response.text[:200]}"
            )

    name = f"{operation.method.upper()} {operation.path}"
    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE, f"{name}: no valid request generated"
        tally.unbreakable.add(name)  # nothing to break: no parameters, no body


def test_no_generated_request_gets_a_server_error(app: FastAPI, backend: EmbeddedBackend) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    results = list(schema.get_all_operations())
    invalid = [str(r.err()) for r in results if isinstance(r, Err)]
    assert invalid == []  # the OpenAPI document itself is valid for every operation
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) == 21  # 11; the desk: overview, limits, self-check upload; 6 case routes, the monthly report
    real_ids = [f["finding_id"] for f in History(Store(backend)).findings(Scope(), FindingFilter(limit=200))][::20]
    assert real_ids
    tally = Tally()
    for role in ROLES:
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz(operation, mode, role, real_ids, tally)
    total = sum(tally.statuses.values())
    print(
        f"\nschemathesis: {total} requests over {len(operations)} operations x {len(ROLES)} roles x 2 modes; "
        f"statuses {dict(sorted(tally.statuses.items()))}; no negative cases for {sorted(tally.unbreakable)}"
    )
    assert total >= len(operations) * len(ROLES) * 2
    assert {200, 403, 422} <= set(tally.statuses)  # the generated requests reached past validation and tenancy
    assert tally.server_errors == []
    assert tally.leaks == []
