"""The options of ``sandboxwatch run``, apart from the worker itself: building the command line must not
import the stream framework (faust takes over a second to import, on every command, even ``--help``)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from sandboxwatch.cli_types import bounded_int, port_number
from sandboxwatch.streams.worker_settings import DEFAULT_BUFFER_BYTES

# What Apache Kafka accepts as a group.instance.id (the rule of topic names): a longer or other id fails in
# the consumer's coordinator, after the worker has started and taken its lease, and it then never joins.
_WORKER_ID = re.compile(r"[A-Za-z0-9._-]{1,249}")


def worker_id(text: str) -> str:
    if not _WORKER_ID.fullmatch(text) or text in (".", ".."):
        shown = text if len(text) <= 60 else text[:60] + "..."
        raise argparse.ArgumentTypeError(
            f"{shown!r}: 1 to 249 characters of A-Z, a-z, 0-9, '.', '_' and '-' (Kafka's rule for a group "
            "instance id), not '.' or '..'"
        )
    return text


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
        type=worker_id,
        default=None,
        metavar="ID",
        help="join the consumer group as a static member under this id (unique among the live workers, the same "
        "across a worker's restarts): a worker restarted after kill -9 takes its partitions back at once instead "
        "of waiting for the broker to expire its dead self (default: a dynamic member)",
    )
    p.add_argument("--topic-prefix", default="sandboxwatch", help="prefix of the events/findings/deadletter topics")
