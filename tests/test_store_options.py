"""The options of the commands over the store are declared by one helper: the same names, destinations and
store help on every command that has them (``run``, a stream worker, declares its own in streams/)."""

from __future__ import annotations

import argparse

import pytest

from sandboxwatch.cli import build_parser
from sandboxwatch.store_options import STORE_HELP, add_store_options
from tests.test_cli_help import ALL

STORE_COMMANDS = {
    "findings list", "findings show", "findings summary", "audit verify", "audit heads", "backtest", "api serve",
    "cases list", "cases verify", "report monthly", "alerts recorder",
}  # fmt: skip


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {name: action for action in parser._actions for name in action.option_strings}


def test_every_store_command_declares_the_store_and_its_period_alike() -> None:
    with_store = {" ".join(path) for path, parser in ALL if "--clickhouse" in _options(parser)} - {"run"}
    assert with_store == STORE_COMMANDS
    for path, parser in ALL:
        if " ".join(path) not in STORE_COMMANDS:
            continue
        options = _options(parser)
        assert options["--clickhouse"].required and options["--clickhouse"].help == STORE_HELP, path
        if "--from" in options:
            assert (options["--from"].dest, options["--to"].dest) == ("since", "until"), path
            assert options["--from"].required == options["--to"].required, path


def test_required_options_are_required_and_a_misspelt_one_is_refused() -> None:
    parser = add_store_options(
        argparse.ArgumentParser(), participant="p", period=("a", "b"), out="o", required=("participant", "out")
    )
    args = parser.parse_args(["--clickhouse", "chdb://x", "--participant", "p1", "--out", "-", "--from", "t"])
    assert (args.clickhouse, args.participant, args.out, args.since, args.until) == ("chdb://x", "p1", "-", "t", None)
    with pytest.raises(ValueError, match="no such option to require: perod"):
        add_store_options(argparse.ArgumentParser(), period=("a", "b"), required=("perod",))
    assert build_parser().parse_args(["report", "monthly", "--clickhouse", "u", "--participant", "p", "--month",
                                      "2025-11", "--out", "r.pdf"]).out == "r.pdf"  # fmt: skip
