"""ccxt's unified trade, transaction and ticker structures → canonical events (pure functions).

Ids are built from the venue's own ids, so re-reading the same record after a restart yields the same
``event_id`` and the monitor counts it once. Amounts come from ccxt configured to return numbers as strings
(``exchange.number = str``), so no float ever touches money."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sandboxwatch.ingest.settings import DEFAULT_CHAIN_NAMES, ExchangeSettings
from sandboxwatch.rules_engine.money import parse_decimal

Record = Mapping[str, Any]
# ccxt's transaction statuses; only a completed one moved money.
DONE = "ok"
PENDING = "pending"
INGEST_ERROR = "ingest_error"


class RecordError(ValueError):
    """An exchange record that cannot become an event; the message names the record and the field."""


def rfc3339_ms(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def _field(record: Record, name: str, what: str) -> Any:
    value = record.get(name)
    if value is None or value == "":
        raise RecordError(f"{what}: field '{name}' is missing")
    return value


def _amount(record: Record, name: str, what: str) -> str:
    value = _field(record, name, what)
    try:
        number = parse_decimal(str(value) if isinstance(value, int) else value)
    except ValueError as exc:
        raise RecordError(f"{what}: field '{name}': {exc}") from None
    return _plain(number)


def _plain(number: Decimal) -> str:
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def dig(record: Record, path: str) -> Any:
    """Follow a dotted path (``info.subAccountId``) through nested mappings."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def account_of(record: Record, settings: ExchangeSettings, what: str) -> str:
    if settings.account_field is None:
        assert settings.account is not None
        return settings.account
    value = dig(record, settings.account_field)
    if value is None or value == "":
        raise RecordError(f"{what}: account field '{settings.account_field}' is missing")
    return str(value)


def _envelope(event_id: str, kind: str, settings: ExchangeSettings, timestamp_ms: int) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id,
        "type": kind,
        "participant": settings.participant,
        "ts": rfc3339_ms(timestamp_ms),
    }
    if settings.site:
        event["site"] = settings.site
    return event


def trade_event(trade: Record, settings: ExchangeSettings) -> dict[str, Any]:
    trade_id = _field(trade, "id", "trade")
    what = f"trade {trade_id}"
    symbol = str(_field(trade, "symbol", what))
    base, _, quote = symbol.partition("/")
    quote = quote.split(":", 1)[0]
    side = _field(trade, "side", what)
    if side not in ("buy", "sell"):
        raise RecordError(f"{what}: field 'side' is {side!r}, not buy or sell")
    event = _envelope(
        f"{settings.exchange}:trade:{symbol}:{trade_id}", "trade", settings, int(_field(trade, "timestamp", what))
    )
    event.update(
        account=account_of(trade, settings, what),
        side=side,
        base=base,
        quote=quote,
        quantity=_amount(trade, "amount", what),
        price=_amount(trade, "price", what),
        order=trade.get("order"),
    )
    event.update(_fee(trade, what))
    return {k: v for k, v in event.items() if v is not None}


def _fee(record: Record, what: str) -> dict[str, str]:
    """ccxt's ``fee: {cost, currency}``; a zero fee is still stated (the venue charged nothing), a missing one
    is left out (unknown)."""
    fee = record.get("fee")
    if not isinstance(fee, Mapping) or fee.get("cost") in (None, ""):
        return {}
    cost = _amount(fee, "cost", f"{what} fee")
    currency = fee.get("currency")
    if not currency:
        raise RecordError(f"{what}: the fee {cost} has no currency")
    if cost.startswith("-"):
        # A maker rebate (OKX reports it as a positive fee, ccxt as a negative cost): the venue paid the
        # customer. Canonical fees are charges, so it travels as extra fields rather than a negative fee.
        return {"fee_rebate": cost[1:], "fee_rebate_asset": str(currency)}
    return {"fee": cost, "fee_asset": str(currency)}


def _completed_ms(tx: Record) -> int | None:
    """When the venue finished the deposit or withdrawal: ccxt's ``updated``, else the raw record's
    ``completeTime`` (Binance: epoch ms on deposits, ``YYYY-MM-DD HH:MM:SS`` UTC on withdrawals)."""
    updated = tx.get("updated")
    if updated not in (None, ""):
        return int(updated)
    raw = dig(tx, "info.completeTime")
    if raw in (None, ""):
        return None
    if isinstance(raw, int) or str(raw).isdigit():
        return int(raw)
    try:
        parsed = datetime.strptime(str(raw), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise RecordError(f"field 'info.completeTime' is {raw!r}, not a time") from None
    return int(parsed.timestamp() * 1000)


def funds_event(kind: str, tx: Record, settings: ExchangeSettings) -> dict[str, Any]:
    """A completed deposit or withdrawal. Crypto ones are on-chain and carry the customer's own address:
    the sender of a deposit, the recipient of a withdrawal. When the venue does not report it, the field is
    left out and the monitor dead-letters the event with that reason, rather than us inventing an address."""
    tx_id = _field(tx, "id", kind)
    what = f"{kind} {tx_id}"
    asset = str(_field(tx, "currency", what))
    event = _envelope(f"{settings.exchange}:{kind}:{tx_id}", kind, settings, int(_field(tx, "timestamp", what)))
    event.update(account=account_of(tx, settings, what), asset=asset, amount=_amount(tx, "amount", what))
    event.update(_fee(tx, what))
    completed = _completed_ms(tx)
    if completed is not None:
        # A completion the venue dates before the request is a venue quirk, not a reason to lose the money
        # movement: the event goes on, and the odd time travels beside it, visibly, as an extra field.
        name = "completed_ts" if completed >= int(_field(tx, "timestamp", what)) else "completed_ts_before_ts"
        event[name] = rfc3339_ms(completed)
    if asset in settings.fiat_assets:
        event["rail"] = "bank"
        return event
    network = tx.get("network")
    address = tx.get("addressFrom") if kind == "deposit" else (tx.get("addressTo") or tx.get("address"))
    if not address:
        party = "sender" if kind == "deposit" else "recipient"
        raise RecordError(
            f"{what}: the venue does not report the customer's {party} address of this on-chain {kind}; "
            "wallet screening needs it"
        )
    if not network:
        raise RecordError(f"{what}: field 'network' is missing, so the chain is unknown")
    event.update(
        rail="onchain",
        chain=chain_name(str(network), settings),
        address=address,
        tx_hash=_field(tx, "txid", what),
    )
    return event


def chain_name(network: str, settings: ExchangeSettings) -> str:
    """The venue's network code as a canonical chain name: the configured names first, then the defaults
    covering ccxt's codes and the venues' raw ids; an unknown code is kept (lower case), not dropped."""
    return settings.chain_names.get(network) or DEFAULT_CHAIN_NAMES.get(network.upper()) or network.lower()


def price_event(ticker: Record, exchange: str, participant: str) -> dict[str, Any]:
    symbol = str(_field(ticker, "symbol", f"{exchange} ticker"))
    what = f"{exchange} ticker {symbol}"
    timestamp = int(_field(ticker, "timestamp", what))
    base, _, quote = symbol.partition("/")
    return {
        "event_id": f"price:{exchange}:{symbol}:{timestamp}",
        "type": "price",
        "participant": participant,
        "ts": rfc3339_ms(timestamp),
        "base": base,
        "quote": quote.split(":", 1)[0],
        "price": _amount(ticker, "last", what),
        "source": exchange,
    }


def ingest_error(participant: str, origin: str, field: str | None, reason: str, raw: object) -> dict[str, Any]:
    """A record the connector could not turn into an event, sent down the events topic so the monitor
    dead-letters it (kept whole, counted, and shown as an invalid_event finding) like any other bad input."""
    digest = hashlib.sha256(json.dumps([origin, reason, raw], sort_keys=True, default=str).encode()).hexdigest()
    return {
        "event_id": f"ingest_error:{digest[:24]}",
        "type": INGEST_ERROR,
        "participant": participant,
        "origin": origin,
        "field": field,
        "reason": reason,
        "raw": raw,
    }
