"""The options every command over the store declares alike: ``--clickhouse``, ``--participant``,
``--from``/``--to`` and ``--out``.

Declared in one place so that their names, destinations (``since``/``until``, which ``_period`` in
history_cli reads) and wording stay the same across findings, audit, backtest, api, cases, report and the
alert recorder; each command says only what the option means for it."""

from __future__ import annotations

import argparse
from collections.abc import Collection

STORE_HELP = "clickhouse://HOST:PORT/DB or chdb://PATH"
OUT_HELP = "write here instead of standard output"


def add_store_options(
    parser: argparse.ArgumentParser,
    *,
    participant: str | None = None,
    period: tuple[str, str] | None = None,
    out: str | None = None,
    required: Collection[str] = (),
) -> argparse.ArgumentParser:
    """``--clickhouse`` (always required), then each option given its help text: ``--participant``,
    ``--from``/``--to`` (``period``: the help of each), ``--out``. ``required`` names the ones a command
    cannot run without: "participant", "period", "out"."""
    unknown = set(required) - {"participant", "period", "out"}
    if unknown:
        raise ValueError(f"add_store_options: no such option to require: {', '.join(sorted(unknown))}")
    parser.add_argument("--clickhouse", required=True, help=STORE_HELP)
    if participant is not None:
        parser.add_argument("--participant", required="participant" in required, help=participant)
    if period is not None:
        since, until = period
        parser.add_argument("--from", dest="since", required="period" in required, help=since)
        parser.add_argument("--to", dest="until", required="period" in required, help=until)
    if out is not None:
        parser.add_argument("--out", required="out" in required, help=out)
    return parser
