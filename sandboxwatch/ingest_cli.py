"""``sandboxwatch ingest exchange|chain``: run a connector against real Kafka.

Exit 2 when the configuration, the checkpoint or the peer cannot be used (bad credentials, unknown
symbol, a reorganisation deeper than tracked); transient outages are retried and never end the process
unless ``--once`` was asked for."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from sandboxwatch.cli_types import port_number
from sandboxwatch.exit_codes import EXIT_OK, EXIT_UNUSABLE
from sandboxwatch.ingest.checkpoint import CheckpointError
from sandboxwatch.ingest.retry import ConnectorError
from sandboxwatch.ingest.settings import SettingsError
from sandboxwatch.streams.topics import Topics


def _common(parser: argparse.ArgumentParser, kind: str) -> None:
    parser.add_argument("--config", required=True, help=f"{kind} connector settings (config/ingest/{kind}.yaml)")
    parser.add_argument("--kafka", required=True, help="bootstrap servers, HOST:PORT[,HOST:PORT]")
    parser.add_argument("--topic", default=Topics().events, help="canonical events topic")
    parser.add_argument("--state", help=f"checkpoint file (default: .sandboxwatch/ingest-{kind}.json)")
    parser.add_argument("--once", action="store_true", help="one poll, then exit (a cron job or a test)")
    parser.add_argument(
        "--metrics-port",
        type=port_number,
        help="serve the connector's Prometheus metrics (ingest lag per stream, last answer) on this port",
    )
    parser.add_argument("--metrics-host", default="0.0.0.0", help="address for --metrics-port (default: all)")


def add_ingest_commands(commands: Any) -> None:
    ingest = commands.add_parser("ingest", help="connectors publishing canonical events to Kafka")
    kinds = ingest.add_subparsers(dest="ingest_command", required=True)
    exchange = kinds.add_parser("exchange", help="the pilot venue's trades, deposits, withdrawals; reference prices")
    _common(exchange, "exchange")
    exchange.add_argument(
        "--api-base-url", help="send every exchange API call (venue and reference markets) here: a proxy or a replay"
    )
    exchange.set_defaults(run=cmd_ingest_exchange)
    chain = kinds.add_parser("chain", help="ERC-20 (and native) transfers of custody wallets; reserve snapshots")
    _common(chain, "chain")
    chain.add_argument("--rpc", help="JSON-RPC URL (overrides rpc_url in the config)")
    chain.set_defaults(run=cmd_ingest_chain)


def _state_path(args: argparse.Namespace, kind: str) -> Path:
    return Path(args.state) if args.state else Path(".sandboxwatch") / f"ingest-{kind}.json"


def _logging() -> None:
    level = os.environ.get("SANDBOXWATCH_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _run(build: Any, args: argparse.Namespace, kind: str) -> int:
    from sandboxwatch.ingest.checkpoint import Checkpoint
    from sandboxwatch.ingest.event_sink import KafkaSink

    _logging()
    try:
        sink = KafkaSink(args.kafka, args.topic)
    except Exception as exc:
        print(f"sandboxwatch ingest {kind}: cannot reach Kafka at {args.kafka}: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    connector = None
    try:
        connector = build(sink, Checkpoint(_state_path(args, kind)))
        if args.metrics_port is not None:
            from sandboxwatch.ingest.lag_metrics import serve

            serve(connector, args.metrics_port, args.metrics_host)
        connector.run(once=args.once)
    except (SettingsError, CheckpointError, ConnectorError) as exc:
        print(f"sandboxwatch ingest {kind}: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        pass
    finally:
        sink.close()
        if connector is not None:
            print(f"sandboxwatch ingest {kind}: {summary(connector)}", file=sys.stderr)
    return EXIT_OK


def summary(connector: Any) -> str:
    """Counts by kind of message: a retraction or an ingest error is not an event the monitor judged."""
    events = connector.published - connector.rejected
    return (
        f"{_count(events, 'event')}, {_count(connector.retracted, 'retraction')}, "
        f"{_count(connector.rejected, 'ingest error')} published"
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def cmd_ingest_exchange(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from sandboxwatch.ingest.exchange_connector import ExchangeConnector
    from sandboxwatch.ingest.settings import load_exchange_settings

    try:
        settings = load_exchange_settings(Path(args.config))
    except SettingsError as exc:
        print(f"sandboxwatch ingest exchange: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    if args.api_base_url:
        markets = tuple(replace(m, api_base_url=args.api_base_url) for m in settings.reference_markets)
        settings = replace(settings, api_base_url=args.api_base_url, reference_markets=markets)
    return _run(lambda sink, checkpoint: ExchangeConnector(settings, sink, checkpoint), args, "exchange")


def cmd_ingest_chain(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from sandboxwatch.ingest.chain_follower import ChainFollower, connect
    from sandboxwatch.ingest.settings import load_chain_settings

    try:
        settings = load_chain_settings(Path(args.config))
    except SettingsError as exc:
        print(f"sandboxwatch ingest chain: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    if args.rpc:
        settings = replace(settings, rpc_url=args.rpc)
    return _run(lambda sink, checkpoint: ChainFollower(settings, connect(settings), sink, checkpoint), args, "chain")
