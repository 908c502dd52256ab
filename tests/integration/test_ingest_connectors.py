"""The connectors against real peers: anvil (a real EVM node) running an ERC-20 that solc compiled here, and
ccxt talking HTTP to the replay server; both publishing through the CLI to the real brokers, and on into
the live monitor and ClickHouse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from sandboxwatch.streams.topics import Topics, ensure_topics
from tests.chain_helpers import artifact, compile_token, deploy_token, send_tokens
from tests.exchange_replay import ExchangeReplay
from tests.helpers import ROOT
from tests.integration.pipeline import Pipeline
from tests.local_services import AnvilNode, ClickHouseServer, LocalService

PARTICIPANT = "alphatrue-basal-pay"


def read_topic(bootstrap: str, topic: str, settle_s: float = 3.0) -> list[dict[str, Any]]:
    """Every event on the topic, read from the start without a consumer group: a message carries one event
    or a batch of them as JSON Lines (docs/events.md, "Stream messages")."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=1000)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        messages: list[dict[str, Any]] = []
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle_s:
            batch = consumer.poll(timeout_ms=500)
            for records in batch.values():
                messages.extend(json.loads(line) for r in records for line in r.value.split(b"\n") if line.strip())
                quiet_since = time.monotonic()
        return messages
    finally:
        consumer.close()


def sandboxwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandboxwatch.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def test_solc_compiles_the_test_token_to_the_committed_artifact() -> None:
    try:
        fresh = compile_token()
    except (OSError, subprocess.CalledProcessError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"solc-js not installed (npm install --prefix tools/chain): {exc}")
    committed = artifact()
    assert fresh["PilotToken"] == committed["PilotToken"] and fresh["compiler"] == committed["compiler"]


@pytest.fixture
def topics(broker: LocalService) -> Topics:
    name = f"t{time.monotonic_ns()}"
    chosen = Topics(f"{name}.events", f"{name}.findings", f"{name}.deadletter", 2, f"{name}-monitor")
    ensure_topics(broker.address, chosen)
    return chosen


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in response, response
    return response["result"]


def test_chain_connector_on_anvil_follows_transfers_and_retracts_after_a_reorg(
    anvil: AnvilNode, broker: LocalService, topics: Topics, tmp_path: Path
) -> None:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    accounts: list[str] = list(w3.eth.accounts)
    custody = accounts[1].lower()
    token = deploy_token(w3, "USDT", 6, 10**15, accounts[0])
    start = w3.eth.block_number
    config = tmp_path / "chain.yaml"
    config.write_text(
        "chain:\n"
        f"  participant: {PARTICIPANT}\n  name: anvil\n  rpc_url: {anvil.url}\n"
        f"  wallets: ['{custody}']\n"
        f"  tokens: [{{address: '{token.address.lower()}', asset: USDT}}]\n"
        f"  confirmations: 1\n  start_block: {start}\n  reorg_window: 32\n"
    )
    state = tmp_path / "chain-state.json"

    def ingest() -> None:
        result = sandboxwatch(
            "ingest", "chain", "--config", str(config), "--kafka", broker.address, "--topic", topics.events,
            "--state", str(state), "--once",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

    send_tokens(w3, token, accounts[0], custody, 2_500_000_000)
    send_tokens(w3, token, accounts[0], accounts[7], 1_000_000)  # not a custody wallet
    rpc(w3, "anvil_mine", "0x1")  # one confirmation
    ingest()
    snapshot = rpc(w3, "evm_snapshot")
    send_tokens(w3, token, accounts[1], accounts[8], 400_000_000)
    rpc(w3, "anvil_mine", "0x1")
    ingest()
    rpc(w3, "evm_revert", snapshot)
    rpc(w3, "anvil_mine", "0x4")  # the competing branch, longer and without the withdrawal
    ingest()
    ingest()  # a restart with nothing new publishes nothing

    messages = read_topic(broker.address, topics.events)
    transfers = [m for m in messages if m["type"] == "transfer" and "retracts" not in m]
    retractions = [m for m in messages if "retracts" in m]
    assert [(t["from"], t["to"], t["amount"]) for t in transfers] == [
        (accounts[0].lower(), custody, "2500"),
        (custody, accounts[8].lower(), "400"),
    ]
    assert [r["retracts"] for r in retractions] == [transfers[1]["event_id"]]
    assert len({m["event_id"] for m in messages}) == len(messages) == 3
    assert transfers[0]["chain"] == "anvil" and transfers[0]["token"] == token.address.lower()


@pytest.fixture
def pipeline(broker: LocalService, clickhouse: ClickHouseServer, tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline(broker.address, clickhouse.url("unused"), tmp_path, partitions=2)
    yield p
    p.stop_worker()


def test_exchange_connector_feeds_the_live_monitor(pipeline: Pipeline, tmp_path: Path) -> None:
    env = {"SANDBOXWATCH_VENUE_API_KEY": "replay-key", "SANDBOXWATCH_VENUE_SECRET": "replay-secret"}
    state = tmp_path / "exchange-state.json"
    with ExchangeReplay() as replay:

        def ingest() -> None:
            result = sandboxwatch(
                "ingest", "exchange", "--config", str(ROOT / "config" / "ingest" / "exchange.yaml"),
                "--kafka", pipeline.kafka, "--topic", pipeline.topics.events, "--state", str(state),
                "--api-base-url", replay.url, "--once", env=env,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr

        ingest()
        replay.stage = 1
        ingest()
        ingest()  # restarted with nothing new
    messages = read_topic(pipeline.kafka, pipeline.topics.events)
    assert len({m["event_id"] for m in messages}) == len(messages), "the connector published an event twice"
    published = [m for m in messages if m["type"] != "ingest_error"]
    assert len([m for m in published if m["type"] == "trade"]) == 18

    pipeline.start_worker()
    store = None

    def stored() -> bool:
        nonlocal store
        store = store or pipeline.store()
        return store.count("events") == len(published) and store.count("dead_letters") == 3

    pipeline.wait_until(stored, "every connector event stored and the unusable deposits dead-lettered")
    assert store is not None
    rows = store.backend.rows(
        f"SELECT DISTINCT kind, subject, arrayStringConcat(evidence, ',') FROM {store.db}.findings "
        "WHERE kind IN ('max_transaction_value', 'blocked_addresses')"
    )
    found = {(str(kind), str(evidence)) for kind, _, evidence in rows}
    assert ("max_transaction_value", "binance:trade:USDT/VND:7005") in found  # 9000 USDT x 26,110 VND > 200m
    assert ("blocked_addresses", "binance:withdrawal:c1f0e2d3c4b5a69788796a5b4c3d2e1f") in found
    letters = store.dead_letters()
    assert all("sender address" in letter["reason"] for letter in letters)
    assert {json.loads(letter["raw"])["raw"]["id"] for letter in letters} == {
        "769800519366885376", "769800519366885377", "769800519366885390",
    }  # fmt: skip
