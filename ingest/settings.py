"""Connector configuration files (config/ingest/*.yaml): which venue, symbols, wallets, contracts.

Read with the licence parameter reader so a misspelt key is an error naming the file, section and field
rather than a setting silently ignored (a skipped wallet is a blind spot for the regulator)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from sandboxwatch.rules_engine.input_files import InputFileError, read_json_object, read_text_file
from sandboxwatch.rules_engine.licence_params import ParamError, ParamReader
from sandboxwatch.rules_engine.timestamps import parse_timestamp

ADDRESS_LENGTH = 42
# A connector settings file is a page of YAML; a megabyte is not one.
MAX_SETTINGS_BYTES = 1 << 20


# ccxt network codes, and the raw ids venues send where ccxt cannot translate them (Binance's ETH, TRX,
# BSC), -> canonical chain names. A venue's ``chain_names`` setting adds to and overrides these.
DEFAULT_CHAIN_NAMES: Mapping[str, str] = {
    "ERC20": "ethereum", "ETH": "ethereum",
    "TRC20": "tron", "TRX": "tron",
    "BEP20": "bsc", "BSC": "bsc",
    "SOL": "solana", "SPL": "solana",
    "BTC": "bitcoin",
    "ARBITRUM": "arbitrum", "ARB": "arbitrum", "ARBONE": "arbitrum",
    "OPTIMISM": "optimism", "OP": "optimism",
    "MATIC": "polygon", "POLYGON": "polygon", "POL": "polygon",
    "BASE": "base",
    "AVAXC": "avalanche", "AVAX-C": "avalanche",
    "TON": "ton",
    "XRP": "xrp",
}  # fmt: skip


class SettingsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Market:
    exchange: str
    symbol: str
    api_base_url: str | None = None


@dataclass(frozen=True, slots=True)
class ExchangeSettings:
    participant: str
    exchange: str
    symbols: tuple[str, ...]
    account: str | None
    account_field: str | None
    site: str | None
    api_key_env: str | None
    secret_env: str | None
    api_base_url: str | None
    deposits: bool
    withdrawals: bool
    fiat_assets: frozenset[str]
    chain_names: Mapping[str, str]
    start: datetime
    poll_interval_s: float
    timeout_s: float
    page_limit: int
    reference_markets: tuple[Market, ...] = ()
    # Venues that sign with a third credential (OKX's API passphrase) read it from this variable.
    password_env: str | None = None


@dataclass(frozen=True, slots=True)
class Token:
    address: str
    asset: str
    decimals: int | None


@dataclass(frozen=True, slots=True)
class ChainSettings:
    participant: str
    chain: str
    rpc_url: str
    wallets: tuple[str, ...]
    tokens: tuple[Token, ...]
    native_asset: str | None
    confirmations: int
    start_block: int | None
    reserve_every_blocks: int | None
    liabilities_file: Path | None
    max_blocks_per_query: int
    reorg_window: int
    poll_interval_s: float
    timeout_s: float


def _load(path: Path, section: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    try:
        raw = yaml.safe_load(read_text_file(path, MAX_SETTINGS_BYTES, "settings file"))
    except InputFileError as exc:
        raise SettingsError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get(section), dict):
        raise SettingsError(f"{path}: needs a '{section}:' section")
    return raw, raw[section]


def _check_unused(path: Path, where: str, reader: ParamReader) -> None:
    unused = reader.unused(frozenset())
    if unused:
        raise SettingsError(f"{path}: {where}: unknown setting(s): {', '.join(unused)}")


def _seconds(reader: ParamReader, name: str, default: float) -> float:
    return reader.duration(name).total_seconds() if reader.has(name) else default


def _opt_text(reader: ParamReader, name: str) -> str | None:
    return reader.text(name) if reader.has(name) else None


def _address(value: str, where: str) -> str:
    text = value.strip()
    if len(text) != ADDRESS_LENGTH or not text.startswith("0x"):
        raise ParamError(where, f"{value!r} is not a 0x-prefixed 20-byte address")
    try:
        int(text[2:], 16)
    except ValueError:
        raise ParamError(where, f"{value!r} is not hexadecimal") from None
    return text.lower()


def load_exchange_settings(path: Path) -> ExchangeSettings:
    raw, section = _load(path, "exchange")
    reader = ParamReader(section)
    try:
        settings = ExchangeSettings(
            participant=reader.text("participant"),
            exchange=reader.text("id"),
            symbols=reader.strings("symbols") or (),
            account=_opt_text(reader, "account"),
            account_field=_opt_text(reader, "account_field"),
            site=_opt_text(reader, "site"),
            api_key_env=_opt_text(reader, "api_key_env"),
            secret_env=_opt_text(reader, "secret_env"),
            api_base_url=_opt_text(reader, "api_base_url"),
            deposits=reader.flag("deposits", True),
            withdrawals=reader.flag("withdrawals", True),
            fiat_assets=frozenset(reader.strings("fiat_assets", required=False) or ("VND",)),
            chain_names=_mapping(section, "chain_names", reader),
            start=_start(section, reader),
            poll_interval_s=_seconds(reader, "poll_interval", 15.0),
            timeout_s=_seconds(reader, "timeout", 10.0),
            page_limit=_page_limit(reader),
            reference_markets=_markets(raw.get("reference_markets")),
            password_env=_opt_text(reader, "password_env"),
        )
    except ParamError as exc:
        raise SettingsError(f"{path}: exchange.{exc.field}: {exc.reason}") from None
    except ValueError as exc:
        raise SettingsError(f"{path}: exchange: {exc}") from None
    _check_unused(path, "exchange", reader)
    if (settings.account is None) == (settings.account_field is None):
        raise SettingsError(f"{path}: exchange: give exactly one of account or account_field")
    return settings


MIN_PAGE_LIMIT = 2


def _page_limit(reader: ParamReader) -> int:
    """A page of one record can never get past a millisecond it has already published (venues read
    ``since`` inclusively), so such a page size would stall the connector for good: refused here."""
    if not reader.has("page_limit"):
        return 500
    value = reader.integer("page_limit")
    if value < MIN_PAGE_LIMIT:
        raise ParamError(
            "page_limit",
            f"{value} cannot make progress: a page must hold a record beyond those already published at the "
            f"cursor's millisecond (at least {MIN_PAGE_LIMIT})",
        )
    return value


def _start(section: Mapping[str, Any], reader: ParamReader) -> datetime:
    """YAML reads an unquoted timestamp as a datetime already; either way it must carry its offset."""
    reader.used.add("start")
    value = section.get("start")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ParamError("start", "needs a UTC offset, e.g. 2025-09-01T00:00:00+07:00")
        return value
    if value is None:
        raise ParamError("start", "missing setting")
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise ParamError("start", str(exc)) from None


def _mapping(section: Mapping[str, Any], name: str, reader: ParamReader) -> dict[str, str]:
    reader.used.add(name)
    value = section.get(name) or {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ParamError(name, "must be a mapping of names to names")
    return dict(value)


def _markets(value: Any) -> tuple[Market, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ParamError("reference_markets", "must be a list")
    markets = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise ParamError(f"reference_markets[{index}]", "must be a mapping")
        reader = ParamReader(item)
        try:
            markets.append(Market(reader.text("exchange"), reader.text("symbol"), _opt_text(reader, "api_base_url")))
        except ParamError as exc:
            raise ParamError(f"reference_markets[{index}].{exc.field}", exc.reason) from None
        if reader.unused(frozenset()):
            raise ParamError(f"reference_markets[{index}]", f"unknown setting(s): {reader.unused(frozenset())}")
    return tuple(markets)


def load_chain_settings(path: Path) -> ChainSettings:
    _, section = _load(path, "chain")
    reader = ParamReader(section, base_dir=path.parent)
    try:
        wallets = tuple(_address(w, "wallets") for w in reader.strings("wallets") or ())
        tokens = _tokens(section.get("tokens"), reader)
        native = _opt_text(reader, "native_asset")
        if not tokens and native is None:
            raise ParamError("tokens", "follow at least one token, or set native_asset")
        liabilities = _opt_text(reader, "liabilities_file")
        settings = ChainSettings(
            participant=reader.text("participant"),
            chain=reader.text("name"),
            rpc_url=reader.text("rpc_url"),
            wallets=wallets,
            tokens=tokens,
            native_asset=native,
            confirmations=reader.integer("confirmations", minimum=0) if reader.has("confirmations") else 12,
            start_block=reader.integer("start_block", minimum=0) if reader.has("start_block") else None,
            reserve_every_blocks=reader.integer("reserve_every_blocks") if reader.has("reserve_every_blocks") else None,
            liabilities_file=(path.parent / liabilities) if liabilities else None,
            max_blocks_per_query=reader.integer("max_blocks_per_query") if reader.has("max_blocks_per_query") else 2000,
            reorg_window=reader.integer("reorg_window") if reader.has("reorg_window") else 256,
            poll_interval_s=_seconds(reader, "poll_interval", 6.0),
            timeout_s=_seconds(reader, "timeout", 10.0),
        )
    except ParamError as exc:
        raise SettingsError(f"{path}: chain.{exc.field}: {exc.reason}") from None
    _check_unused(path, "chain", reader)
    if settings.reserve_every_blocks and settings.liabilities_file is None:
        raise SettingsError(
            f"{path}: chain.liabilities_file: reserve snapshots need the client liabilities the ledger publishes"
        )
    return settings


def _tokens(value: Any, reader: ParamReader) -> tuple[Token, ...]:
    reader.used.add("tokens")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ParamError("tokens", "must be a list of {address, asset, decimals}")
    tokens = []
    for index, item in enumerate(value):
        where = f"tokens[{index}]"
        if not isinstance(item, dict):
            raise ParamError(where, "must be a mapping")
        token_reader = ParamReader(item)
        try:
            address = _address(token_reader.text("address"), "address")
            asset = token_reader.text("asset")
            decimals = token_reader.integer("decimals", minimum=0) if token_reader.has("decimals") else None
        except ParamError as exc:
            raise ParamError(f"{where}.{exc.field}", exc.reason) from None
        if token_reader.unused(frozenset()):
            raise ParamError(where, f"unknown setting(s): {', '.join(token_reader.unused(frozenset()))}")
        tokens.append(Token(address, asset, decimals))
    return tuple(tokens)


def read_liabilities(path: Path) -> dict[str, Decimal]:
    """The ledger's client liabilities per asset (a JSON object of decimal strings), read at each snapshot."""
    from sandboxwatch.rules_engine.money import parse_decimal

    try:
        raw = read_json_object(path, MAX_SETTINGS_BYTES, "client liabilities file", "a JSON object of asset: amount")
    except InputFileError as exc:
        raise SettingsError(str(exc)) from None
    try:
        return {str(asset): parse_decimal(amount) for asset, amount in raw.items()}
    except ValueError as exc:
        raise SettingsError(f"{path}: client liabilities: {exc}") from None
