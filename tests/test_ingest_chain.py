"""The chain connector against web3's in-process test chain (py-evm): fast, but a real EVM running the
ERC-20 compiled by solc. The same scenarios run against anvil in tests/integration/test_ingest_chain_node.py."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from web3 import EthereumTesterProvider, Web3

from sandboxwatch.ingest.chain_follower import ChainFollower
from sandboxwatch.ingest.checkpoint import Checkpoint
from sandboxwatch.ingest.event_sink import MemorySink
from sandboxwatch.ingest.retry import ConnectorError
from sandboxwatch.ingest.settings import ChainSettings, Token
from sandboxwatch.ingest_cli import summary
from tests.chain_helpers import deploy_token, send_tokens

PARTICIPANT = "alphatrue-basal-pay"


class Chain:
    def __init__(self) -> None:
        self.w3 = Web3(EthereumTesterProvider())
        self.tester: Any = self.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        self.accounts: list[str] = list(self.w3.eth.accounts)
        self.custody = [self.accounts[1].lower(), self.accounts[2].lower()]
        self.token = deploy_token(self.w3, "USDT", 6, 10**18, self.accounts[0])

    def send(self, sender: int, recipient: str, amount: int) -> Any:
        return send_tokens(self.w3, self.token, self.accounts[sender], recipient, amount)

    def mine(self, blocks: int) -> None:
        self.tester.mine_blocks(blocks)


def settings_for(chain: Chain, tmp_path: Path, **changes: Any) -> ChainSettings:
    values: dict[str, Any] = dict(
        participant=PARTICIPANT,
        chain="ethereum",
        rpc_url="in-process",
        wallets=tuple(chain.custody),
        tokens=(Token(chain.token.address.lower(), "USDT", None),),
        native_asset=None,
        confirmations=0,
        start_block=0,
        reserve_every_blocks=None,
        liabilities_file=None,
        max_blocks_per_query=3,
        reorg_window=64,
        poll_interval_s=0.0,
        timeout_s=5.0,
    )
    values.update(changes)
    return ChainSettings(**values)


def follower(chain: Chain, settings: ChainSettings, tmp_path: Path, sink: MemorySink) -> ChainFollower:
    return ChainFollower(settings, chain.w3, sink, Checkpoint(tmp_path / "chain.json"), sleep=lambda s: None)


@pytest.fixture()
def chain() -> Chain:
    return Chain()


def transfers(sink: MemorySink) -> list[dict[str, Any]]:
    return [e for e in sink.events if e["type"] == "transfer" and "retracts" not in e]


def test_follows_transfers_touching_custody_wallets_only(chain: Chain, tmp_path: Path) -> None:
    outsider = chain.accounts[5]
    chain.send(0, chain.custody[0], 1_500_000_000)  # 1500 USDT in
    chain.send(0, outsider, 7_000_000)  # not ours
    chain.send(1, outsider, 250_500_000)  # 250.5 USDT out of custody
    sink = MemorySink()
    follower(chain, settings_for(chain, tmp_path), tmp_path, sink).poll_once()
    seen = transfers(sink)
    assert [(e["from"], e["to"], e["amount"]) for e in seen] == [
        (chain.accounts[0].lower(), chain.custody[0], "1500"),
        (chain.custody[0], outsider.lower(), "250.5"),
    ]
    first = seen[0]
    assert first["asset"] == "USDT" and first["token"] == chain.token.address.lower()
    assert first["participant"] == PARTICIPANT and first["chain"] == "ethereum"
    assert first["ts"].endswith("+00:00") and first["block"] >= 1
    assert len({e["event_id"] for e in seen}) == 2


def test_waits_for_confirmations(chain: Chain, tmp_path: Path) -> None:
    sink = MemorySink()
    follow = follower(chain, settings_for(chain, tmp_path, confirmations=3), tmp_path, sink)
    chain.send(0, chain.custody[1], 42_000_000)
    follow.poll_once()
    assert transfers(sink) == []
    chain.mine(2)
    follow.poll_once()
    assert transfers(sink) == []
    chain.mine(1)
    follow.poll_once()
    assert [e["amount"] for e in transfers(sink)] == ["42"]


def test_restart_neither_skips_nor_duplicates(chain: Chain, tmp_path: Path) -> None:
    sink = MemorySink()
    settings = settings_for(chain, tmp_path)
    chain.send(0, chain.custody[0], 1_000_000)
    follower(chain, settings, tmp_path, sink).poll_once()
    for amount in (2_000_000, 3_000_000):
        chain.send(0, chain.custody[0], amount)
    follower(chain, settings, tmp_path, sink).poll_once()  # a new process, same checkpoint
    follower(chain, settings, tmp_path, sink).poll_once()  # and again with nothing new
    assert [e["amount"] for e in transfers(sink)] == ["1", "2", "3"]


def test_reorg_retracts_events_from_abandoned_blocks(chain: Chain, tmp_path: Path) -> None:
    sink = MemorySink()
    follow = follower(chain, settings_for(chain, tmp_path), tmp_path, sink)
    chain.send(0, chain.custody[0], 5_000_000)
    follow.poll_once()
    snapshot = chain.tester.take_snapshot()
    chain.send(0, chain.custody[0], 9_000_000)  # will be abandoned
    follow.poll_once()
    abandoned = transfers(sink)[-1]
    assert abandoned["amount"] == "9"
    chain.tester.revert_to_snapshot(snapshot)
    chain.mine(3)  # a longer competing branch without that transfer
    follow.poll_once()
    retractions = [e for e in sink.events if "retracts" in e]
    assert [r["retracts"] for r in retractions] == [abandoned["event_id"]]
    assert retractions[0]["event_id"] != abandoned["event_id"]
    assert "left the canonical chain" in retractions[0]["reason"]
    assert [e["amount"] for e in transfers(sink)] == ["5", "9"]  # the kept one is not retracted


def test_transaction_reincluded_after_reorg_is_a_new_observation(chain: Chain, tmp_path: Path) -> None:
    sink = MemorySink()
    follow = follower(chain, settings_for(chain, tmp_path), tmp_path, sink)
    snapshot = chain.tester.take_snapshot()
    chain.mine(1)
    chain.send(0, chain.custody[0], 7_000_000)
    follow.poll_once()
    chain.tester.revert_to_snapshot(snapshot)
    chain.mine(2)
    chain.send(0, chain.custody[0], 7_000_000)  # the same payment, mined on the new branch
    follow.poll_once()
    seen = transfers(sink)
    retracted = {e["retracts"] for e in sink.events if "retracts" in e}
    assert retracted == {seen[0]["event_id"]}
    assert [e["amount"] for e in seen] == ["7", "7"] and seen[0]["event_id"] != seen[1]["event_id"]


def test_reorg_inside_the_confirmation_depth_never_reaches_the_monitor(chain: Chain, tmp_path: Path) -> None:
    sink = MemorySink()
    follow = follower(chain, settings_for(chain, tmp_path, confirmations=4), tmp_path, sink)
    snapshot = chain.tester.take_snapshot()
    chain.send(0, chain.custody[0], 1_000_000)
    follow.poll_once()
    chain.tester.revert_to_snapshot(snapshot)
    chain.mine(6)
    follow.poll_once()
    assert sink.events == []


def test_reorg_deeper_than_the_window_is_a_clear_error(chain: Chain, tmp_path: Path) -> None:
    chain.mine(5)
    snapshot = chain.tester.take_snapshot()
    chain.mine(10)
    follow = follower(chain, settings_for(chain, tmp_path, reorg_window=3, start_block=8), tmp_path, MemorySink())
    follow.poll_once()
    chain.tester.revert_to_snapshot(snapshot)
    chain.mine(20)
    with pytest.raises(ConnectorError, match="deeper than the 3 tracked blocks") as caught:
        follow.poll_once()
    assert not caught.value.transient


def test_reserve_snapshots_from_balance_of(chain: Chain, tmp_path: Path) -> None:
    liabilities = tmp_path / "liabilities.json"
    liabilities.write_text(json.dumps({"USDT": "1000.25"}))
    chain.send(0, chain.custody[0], 600_000_000)
    chain.send(0, chain.custody[1], 400_250_000)
    sink = MemorySink()
    settings = settings_for(chain, tmp_path, reserve_every_blocks=4, liabilities_file=liabilities)
    follow = follower(chain, settings, tmp_path, sink)
    follow.poll_once()
    reserves = [e for e in sink.events if e["type"] == "reserve"]
    assert len(reserves) == 1
    assert Decimal(reserves[0]["custody_balance"]) == Decimal("1000.25")
    assert reserves[0]["client_liabilities"] == "1000.25" and reserves[0]["wallets"] == 2
    chain.send(1, chain.accounts[6], 100_000_000)
    follow.poll_once()  # fewer than 4 blocks later: no new snapshot
    assert len([e for e in sink.events if e["type"] == "reserve"]) == 1
    chain.mine(4)
    follow.poll_once()
    latest = [e for e in sink.events if e["type"] == "reserve"][-1]
    assert Decimal(latest["custody_balance"]) == Decimal("900.25")


def test_missing_liability_figure_is_dead_lettered_not_guessed(chain: Chain, tmp_path: Path) -> None:
    liabilities = tmp_path / "liabilities.json"
    liabilities.write_text(json.dumps({"USDC": "1"}))
    sink = MemorySink()
    settings = settings_for(chain, tmp_path, reserve_every_blocks=2, liabilities_file=liabilities)
    follower(chain, settings, tmp_path, sink).poll_once()
    errors = [e for e in sink.events if e["type"] == "ingest_error"]
    assert errors and "no client liability figure for USDT" in errors[0]["reason"]
    assert not [e for e in sink.events if e["type"] == "reserve"]


def test_native_transfers_when_asked(chain: Chain, tmp_path: Path) -> None:
    w3 = chain.w3
    tx = w3.eth.send_transaction({"from": chain.accounts[0], "to": chain.accounts[1], "value": w3.to_wei(2, "ether")})
    w3.eth.wait_for_transaction_receipt(tx)
    sink = MemorySink()
    follower(chain, settings_for(chain, tmp_path, native_asset="ETH"), tmp_path, sink).poll_once()
    native = [e for e in transfers(sink) if e["asset"] == "ETH"]
    assert [(e["amount"], e["log_index"], e["to"]) for e in native] == [("2", -1, chain.custody[0])]


def test_a_retracted_reserve_snapshot_is_replaced_in_the_same_poll(chain: Chain, tmp_path: Path) -> None:
    """Without a replacement, reserve_coverage would have no valid figure until the next scheduled block."""
    liabilities = tmp_path / "liabilities.json"
    liabilities.write_text(json.dumps({"USDT": "5"}))
    chain.send(0, chain.custody[0], 5_000_000)
    snapshot = chain.tester.take_snapshot()
    chain.mine(1)
    sink = MemorySink()
    settings = settings_for(chain, tmp_path, reserve_every_blocks=1000, liabilities_file=liabilities)
    follow = follower(chain, settings, tmp_path, sink)
    follow.poll_once()
    [first] = [e for e in sink.events if e["type"] == "reserve"]
    chain.tester.revert_to_snapshot(snapshot)
    chain.mine(3)  # a longer branch: the snapshot's block is abandoned
    follow.poll_once()
    reserves = [e for e in sink.events if e["type"] == "reserve" and "retracts" not in e]
    retractions = [e for e in sink.events if "retracts" in e]
    assert [r["retracts"] for r in retractions] == [first["event_id"]]
    assert len(reserves) == 2 and reserves[1]["block"] == chain.w3.eth.block_number
    assert reserves[1]["event_id"] != first["event_id"] and Decimal(reserves[1]["custody_balance"]) == Decimal("5")
    assert (follow.published, follow.retracted, follow.rejected) == (3, 1, 0)
    assert summary(follow) == "3 events, 1 retraction, 0 ingest errors published"
