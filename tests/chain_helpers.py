"""An ERC-20 compiled offline with solc (tools/chain) deployed on a test chain, and moving tokens on it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.local_services import CHAIN_TOOLS

TOKEN_SOURCE = Path(__file__).parent / "fixtures" / "chain" / "PilotToken.sol"
TOKEN_ARTIFACT = TOKEN_SOURCE.with_suffix(".json")


def compile_token() -> dict[str, Any]:
    """Run solc-js on the Solidity source (no network); raises if the compiler is not installed."""
    out = subprocess.run(
        ["node", str(CHAIN_TOOLS / "compile.cjs"), str(TOKEN_SOURCE)],
        check=True,
        capture_output=True,
        text=True,
        cwd=CHAIN_TOOLS,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def artifact() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(TOKEN_ARTIFACT.read_text())
    return data


def deploy_token(w3: Any, symbol: str, decimals: int, supply: int, owner: str | None = None) -> Any:
    token = artifact()["PilotToken"]
    owner = owner or w3.eth.accounts[0]
    factory = w3.eth.contract(abi=token["abi"], bytecode=token["bytecode"])
    tx = factory.constructor(f"Pilot {symbol}", symbol, decimals, supply).transact({"from": owner})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    return w3.eth.contract(address=receipt["contractAddress"], abi=token["abi"])


def send_tokens(w3: Any, token: Any, sender: str, recipient: str, amount: int) -> Any:
    tx = token.functions.transfer(w3.to_checksum_address(recipient), amount).transact({"from": sender})
    return w3.eth.wait_for_transaction_receipt(tx)
