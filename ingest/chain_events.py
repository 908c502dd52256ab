"""Chain data → canonical ``transfer`` and ``reserve`` events, and retractions of them (pure functions).

An event names the block it was seen in by hash: after a reorganisation the same transaction may land in
another block, and that is a new observation, while the old one is retracted. A retraction is its own
event type (docs/events.md): ``retracts`` names the id it withdraws, with the chain and block it was seen
in; the monitor checks it against that event and reports which evidence it voids."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

Event = dict[str, Any]


class LogError(ValueError):
    pass


def hex_of(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value).lower()
    return text if text.startswith("0x") else "0x" + text


def block_time(timestamp: int) -> str:
    return datetime.fromtimestamp(int(timestamp), tz=UTC).isoformat()


def units(raw: int, decimals: int) -> str:
    amount = Decimal(raw).scaleb(-decimals)
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _seen_in(block_hash: str) -> str:
    return block_hash[:18]


def transfer_from_log(
    log: dict[str, Any], participant: str, chain: str, asset: str, decimals: int, timestamp: int
) -> Event:
    topics = [hex_of(t) for t in log["topics"]]
    tx_hash = hex_of(log["transactionHash"])
    if len(topics) != 3:
        raise LogError(f"log {tx_hash}#{log['logIndex']}: a Transfer without indexed from/to ({len(topics)} topics)")
    data = hex_of(log["data"])
    try:
        raw = int(data, 16) if data != "0x" else 0
    except ValueError:
        raise LogError(f"log {tx_hash}#{log['logIndex']}: amount data {data[:20]!r} is not a number") from None
    block_hash = hex_of(log["blockHash"])
    return {
        "event_id": f"{chain}:{tx_hash}:{int(log['logIndex'])}@{_seen_in(block_hash)}",
        "type": "transfer",
        "participant": participant,
        "ts": block_time(timestamp),
        "chain": chain,
        "tx_hash": tx_hash,
        "log_index": int(log["logIndex"]),
        "block": int(log["blockNumber"]),
        "block_hash": block_hash,
        "from": "0x" + topics[1][-40:],
        "to": "0x" + topics[2][-40:],
        "asset": asset,
        "amount": units(raw, decimals),
        "token": hex_of(log["address"]),
    }


def native_transfer(
    tx: dict[str, Any], block: int, block_hash: str, participant: str, chain: str, asset: str, timestamp: int
) -> Event:
    """A plain value transfer has no log: ``log_index`` is -1 and the id names the transaction."""
    tx_hash = hex_of(tx["hash"])
    return {
        "event_id": f"{chain}:{tx_hash}:native@{_seen_in(block_hash)}",
        "type": "transfer",
        "participant": participant,
        "ts": block_time(timestamp),
        "chain": chain,
        "tx_hash": tx_hash,
        "log_index": -1,
        "block": block,
        "block_hash": block_hash,
        "from": str(tx["from"]).lower(),
        "to": str(tx["to"]).lower(),
        "asset": asset,
        "amount": units(int(tx["value"]), 18),
    }


def reserve_event(
    participant: str,
    chain: str,
    asset: str,
    block: int,
    block_hash: str,
    timestamp: int,
    custody: str,
    liabilities: Decimal,
    wallets: int,
) -> Event:
    return {
        "event_id": f"reserve:{chain}:{asset}:{block}@{_seen_in(block_hash)}",
        "type": "reserve",
        "participant": participant,
        "ts": block_time(timestamp),
        "asset": asset,
        "custody_balance": custody,
        "client_liabilities": format(liabilities, "f"),
        "chain": chain,
        "block": block,
        "block_hash": block_hash,
        "wallets": wallets,
    }


def retraction(event: Event, reason: str) -> Event:
    return {
        "event_id": f"{event['event_id']}:retracted",
        "type": "retraction",
        "participant": event["participant"],
        "ts": event["ts"],
        "retracts": event["event_id"],
        "reason": reason,
        "chain": event["chain"],
        "block": event["block"],
        "block_hash": event["block_hash"],
    }
