"""The options of ``sandboxwatch run``, apart from the worker itself: building the command line must not
import the stream framework (faust takes over a second to import, on every command, even ``--help``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sandboxwatch.cli_types import bounded_int, port_number
from sandboxwatch.streams.worker_settings import DEFAULT_BUFFER_BYTES


def add_worker_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kafka", required=True, help="bootstrap HOST:PORT")
    p.add_argument("--clickhouse", required=True, help="clickhouse://HOST:PORT/DB or chdb://PATH")
    p.add_argument("--licence", action="append", type=Path, required=True, help="licence file (repeatable)")
    p.add_argument("--partitions", type=int, default=4, help="partitions of the topics this worker creates")
    p.add_argument("--metrics-port", type=port_number, default=9464, help="port of /metrics, /live and /ready")
    p.add_argument("--metrics-host", default="127.0.0.1", help="address of /metrics, /live and /ready")
    p.add_argument("--data-dir", type=Path, default=Path(".sandboxwatch/faust"), help="the worker's local state")
    p.add_argument(
        "--fetch-max-wait",
        type=float,
        default=1.5,
        metavar="SECONDS",
        help="longest the broker may hold an empty fetch; lower it for brokers that hold fetches even when "
        "data arrives (Apache Kafka does not: the default is faust's)",
    )
    p.add_argument(
        "--buffer-mib",
        type=bounded_int(1, 1024 * 1024),
        default=DEFAULT_BUFFER_BYTES // 2**20,
        metavar="MIB",
        help="most fetched messages (MiB) held before the monitor takes them; fetching pauses above it",
    )
    p.add_argument(
        "--worker-id",
        default=None,
        metavar="ID",
        help="join the consumer group as a static member under this id (unique among the live workers, the same "
        "across a worker's restarts): a worker restarted after kill -9 takes its partitions back at once instead "
        "of waiting for the broker to expire its dead self (default: a dynamic member)",
    )
    p.add_argument("--topic-prefix", default="sandboxwatch", help="prefix of the events/findings/deadletter topics")
