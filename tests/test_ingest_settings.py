"""Connector configuration: the committed files load, and mistakes name the file, section and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandboxwatch.ingest.settings import SettingsError, load_chain_settings, load_exchange_settings, read_liabilities
from tests.helpers import ROOT

CONFIG = ROOT / "config" / "ingest"


def test_committed_configs_load() -> None:
    exchange = load_exchange_settings(CONFIG / "exchange.yaml")
    assert exchange.symbols == ("USDT/VND", "USDC/VND") and exchange.start.utcoffset() is not None
    chain = load_chain_settings(CONFIG / "chain.yaml")
    assert chain.confirmations == 12 and len(chain.wallets) == 2
    assert chain.liabilities_file is not None and set(read_liabilities(chain.liabilities_file)) == {"USDT", "USDC"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("exchange: {participant: p, id: binance, symbols: [A/B], account: a}", "exchange.start: missing"),
        (
            "exchange: {participant: p, id: binance, symbols: [A/B], account: a, start: '2025-01-01T00:00:00Z', "
            "symbol: X}",
            "unknown setting(s): symbol",
        ),
        (
            "exchange: {participant: p, id: binance, symbols: [A/B], start: '2025-01-01T00:00:00Z'}",
            "exactly one of account or account_field",
        ),
        (
            "exchange: {participant: p, id: binance, symbols: [A/B], account: a, start: 2025-01-01T00:00:00, "
            "poll_interval: 5}",
            "exchange.start: needs a UTC offset",
        ),
        ("chain: {participant: p, name: e, rpc_url: u, wallets: ['0x12'], native_asset: ETH}", "not a 0x-prefixed"),
        (
            "chain: {participant: p, name: e, rpc_url: u, wallets: ['0x" + "1" * 40 + "'], tokens: [{asset: T}]}",
            "chain.tokens[0].address: missing",
        ),
        (
            "chain: {participant: p, name: e, rpc_url: u, wallets: ['0x" + "1" * 40 + "'], native_asset: ETH, "
            "reserve_every_blocks: 10}",
            "chain.liabilities_file: reserve snapshots need",
        ),
        ("chain: {participant: p, name: e, rpc_url: u, wallets: ['0x" + "1" * 40 + "']}", "follow at least one token"),
        ("nothing: here", "needs a 'exchange:' section"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    loader = load_chain_settings if text.startswith("chain") else load_exchange_settings
    with pytest.raises(SettingsError) as caught:
        loader(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_kafka_python_checksums_batches_in_c() -> None:
    """The connectors publish through kafka-python; its pure-Python CRC-32C halves their rate."""
    import kafka.record.util

    assert kafka.record.util.crc32c_c is not None, "install kafka-python[crc32c]"
