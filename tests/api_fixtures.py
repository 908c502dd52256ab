"""A store holding two participants' monitored days, and keys for every role: shared by the API tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sandboxwatch.api.app import create_app
from sandboxwatch.api.keys import KeyRing, Principal, hash_key
from sandboxwatch.api.live_state import LiveState
from sandboxwatch.rules_engine.licence import Licence, load_licence
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
from sandboxwatch.store.backends import EmbeddedBackend
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.history import History
from sandboxwatch.streams.inbound import InboundMessage
from sandboxwatch.streams.monitor import Monitor
from tests.helpers import DA_NANG, NATIONAL
from tests.local_services import ClickHouseServer

DA_NANG_PARTICIPANT = "alphatrue-basal-pay"
NATIONAL_PARTICIPANT = "vn-casp-pilot-01"
SECRETS = {
    "regulator": "reg-secret-1",
    "auditor": "aud-secret-1",
    "alphatrue": "alpha-secret-1",
    "casp": "casp-secret-1",
}


def key_ring() -> KeyRing:
    return KeyRing(
        [
            (hash_key(SECRETS["regulator"]), Principal("sbv-desk", "regulator")),
            (hash_key(SECRETS["auditor"]), Principal("audit-firm", "auditor")),
            (hash_key(SECRETS["alphatrue"]), Principal("alphatrue-ops", "participant", DA_NANG_PARTICIPANT)),
            (hash_key(SECRETS["casp"]), Principal("casp-ops", "participant", NATIONAL_PARTICIPANT)),
        ]
    )


@dataclass(frozen=True)
class Monitored:
    store: Store
    licences: dict[str, Licence]
    lines: dict[str, list[str]]


def monitored_days(store: Store, accounts: int = 60) -> Monitored:
    licences = {DA_NANG_PARTICIPANT: load_licence(DA_NANG), NATIONAL_PARTICIPANT: load_licence(NATIONAL)}
    monitor = Monitor(list(licences.values()), store)
    lines: dict[str, list[str]] = {}
    offset = 0
    for participant, licence in licences.items():
        scenario = build_scenario(licence, SimulationConfig(accounts=accounts, seed=5))
        lines[participant] = [line.rstrip("\n") for line in scenario_lines(scenario)]
        batch = [
            InboundMessage("events", 0, offset + i, participant.encode(), line.encode())
            for i, line in enumerate(lines[participant])
        ]
        offset += len(batch)
        for start in range(0, len(batch), 1000):
            monitor.process_batch(batch[start : start + 1000])
    for licence, path in ((licences[DA_NANG_PARTICIPANT], DA_NANG), (licences[NATIONAL_PARTICIPANT], NATIONAL)):
        store.record_licence(licence, Path(path))
    return Monitored(store, licences, lines)


def monitored_on_server(clickhouse: ClickHouseServer, prefix: str, accounts: int = 40) -> tuple[str, Monitored]:
    """Monitored days in a fresh database of a real ClickHouse server, with the URL the CLI is given."""
    url = clickhouse.url(prefix + uuid.uuid4().hex[:10])
    return url, monitored_days(Store.open(url), accounts=accounts)


def event_ids(lines: list[str]) -> set[str]:
    return {json.loads(line)["event_id"] for line in lines}


def app_over(store: Store, licences: dict[str, Licence], refresh_s: float = 2.0) -> FastAPI:
    """The API over a store, with every role's key (``SECRETS``)."""
    return create_app(History(store), key_ring(), LiveState(store, licences, refresh_s=refresh_s))


def auth(who: str) -> dict[str, str]:
    """The bearer header of a role's key (``SECRETS``)."""
    return {"Authorization": f"Bearer {SECRETS[who]}"}


def call(client: TestClient, method: str, path: str, who: str | None, body: Any = None, **params: Any) -> Any:
    """A request as ``who`` (None: no key), with a JSON body when one is given and query parameters."""
    return client.request(method, path, headers=auth(who) if who else {}, json=body, params=params)


def get(client: TestClient, path: str, who: str | None, **params: Any) -> Any:
    return call(client, "GET", path, who, **params)


def post(client: TestClient, path: str, who: str, body: Any) -> Any:
    return call(client, "POST", path, who, body)


def api_database(prefix: str, accounts: int = 60, raise_server_exceptions: bool = True) -> tuple[Any, Any, Any]:
    """The fixtures an API test module needs over a database of its own: ``monitored`` (two participants'
    monitored days), ``client`` (the app over it, every role's key) and the autouse ``_own_database``, which
    points the embedded backend (shared by every module of the session) back at this module's database before
    each test. Assign all three at module level: ``monitored, client, _own_database = api_database("x")``."""
    database = prefix + uuid.uuid4().hex[:8]

    @pytest.fixture(scope="module", name="monitored")
    def monitored(backend: EmbeddedBackend) -> Monitored:
        backend.database = database
        store = Store(backend)
        store.migrate()
        return monitored_days(store, accounts=accounts)

    @pytest.fixture(scope="module", name="client")
    def client(monitored: Monitored) -> Iterator[TestClient]:
        app = app_over(monitored.store, monitored.licences)
        with TestClient(app, raise_server_exceptions=raise_server_exceptions) as test_client:
            yield test_client

    @pytest.fixture(autouse=True, name="_own_database")
    def own_database(backend: EmbeddedBackend) -> None:
        backend.database = database

    return monitored, client, own_database
