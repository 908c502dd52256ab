"""``sandboxwatch`` entry point (docs/cli.md, version 1).

Exit codes (sandboxwatch/exit_codes.py): 0 no breach or critical finding, 1 at least one, 2 the licence or
events cannot be used (or not one valid event was read), 3 an internal error (a bug: reported in one line,
never as exit 1)."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, NoReturn

from sandboxwatch.cli_types import bounded_int, port_number
from sandboxwatch.exit_codes import EXIT_FINDINGS, EXIT_INTERNAL, EXIT_OK, EXIT_UNUSABLE, Unusable, unwritable
from sandboxwatch.finding_output import WRITERS
from sandboxwatch.gc_policy import tune_for_throughput
from sandboxwatch.rules_engine.event_reader import (
    bounded_lines,
    decode_events,
    detect_format,
    leading_lines,
    read_events,
)
from sandboxwatch.rules_engine.findings import SEVERITIES
from sandboxwatch.rules_engine.licence import Licence, LicenceError, load_licence
from sandboxwatch.rules_engine.self_check import run_check
from sandboxwatch.rules_engine.timestamps import parse_timestamp
from sandboxwatch.store.backends import StoreError
from sandboxwatch.store_options import add_store_options

# A simulated day is built in memory: bounded so that a slip of the keyboard is a usage error, not an
# hour of swapping (a day of a million accounts is already far beyond any pilot's).
SIMULATED_ACCOUNTS = bounded_int(1, 1_000_000)
SIMULATED_EVENTS = bounded_int(0, 20_000_000)


def _licence(path: str) -> Licence:
    try:
        return load_licence(path)
    except LicenceError as exc:
        raise Unusable(str(exc)) from None


@contextlib.contextmanager
def _open_events(path: str, fmt: str | None) -> Iterator[tuple[Iterator[str], str, str, Callable[[], Iterator[str]]]]:
    """Yield (lines, source name, format, a way to read the lines again); undecodable bytes become bad
    lines, not a crash. The format is the one asked for, else what the content is (docs/cli.md), the same
    for a file and for stdin. Standard input is spooled to a temporary file first, so that `check` can read
    it again to sort it if it turns out not to be in time order; so is a named pipe (a FIFO cannot be read
    twice: opening it again would wait for a writer that is gone)."""
    kind = "stream" if path == "-" else _events_kind(path)
    if kind == "device":
        raise Unusable(f"{path}: a device, not an events file (give a file or a pipe, or '-' for standard input)")
    with contextlib.ExitStack() as stack:
        source = path
        if kind == "stream":
            spool = stack.enter_context(tempfile.NamedTemporaryFile(prefix="sandboxwatch-stdin-"))
            binary = getattr(sys.stdin, "buffer", None) if path == "-" else _open_stream(path)
            if binary is not None:
                with contextlib.closing(binary) if path != "-" else contextlib.nullcontext():
                    shutil.copyfileobj(binary, spool, 1 << 20)
            else:
                for text in sys.stdin:
                    spool.write(text.encode("utf-8", "surrogateescape"))
            spool.flush()
            path, source = spool.name, source if path != "-" else "<stdin>"

        def reopen() -> Iterator[str]:
            try:
                stream = stack.enter_context(decode_events(open(path, "rb")))  # noqa: SIM115
            except OSError as exc:
                raise Unusable(f"{source}: cannot read the events file: {exc.strerror}") from None
            return bounded_lines(stream)

        lines = reopen()
        head, first = leading_lines(lines)
        chosen = fmt or detect_format(source if source != "<stdin>" else "", first)
        yield itertools.chain(head, lines), source, chosen, reopen


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _events_kind(path: str) -> str:
    """What ``--events`` names: "device" (/dev/zero, /dev/urandom, a disk: an endless or meaningless read,
    refused), "stream" (a named pipe or socket: spooled, as standard input is), else "file" (a missing
    one is left to the open, which says why)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return "file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "stream" if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) else "file"


def _open_stream(path: str) -> IO[bytes]:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise Unusable(f"{path}: cannot read the events file: {exc.strerror}") from None


def cmd_check(args: argparse.Namespace) -> int:
    for given, name in ((args.events, "the events file"), (args.licence, "the licence")):
        if args.out and args.out != "-" and _same_file(args.out, given):
            raise Unusable(f"--out {args.out} is {name}: writing the findings there would destroy it")
    licence = _licence(args.licence)
    as_of = None
    if args.as_of is not None:  # an empty --as-of (an unset variable) is refused, not taken for "none given"
        try:
            as_of = parse_timestamp(args.as_of)
        except ValueError as exc:
            raise Unusable(f"--as-of: {exc}") from None
    with _open_events(args.events, args.events_format) as (lines, source, fmt, again):
        result = run_check(
            licence, read_events(lines, source, fmt), as_of, source, reread=lambda: read_events(again(), source, fmt)
        )
        read_format = fmt
    for error in result.errors:
        print(error.describe(), file=sys.stderr)
    writer = WRITERS[args.format]
    if args.out and args.out != "-":
        try:
            with open(args.out, "w", encoding="utf-8", newline="") as out:
                writer(result.findings, out)
        except OSError as exc:
            raise unwritable("--out", args.out, exc) from None
    else:
        writer(result.findings, sys.stdout)
    stats = result.stats
    by_severity = ", ".join(f"{stats.findings[s]} {s}" for s in SEVERITIES if stats.findings[s])
    if result.unsorted_at:
        print(
            f"{source}: not in event-time order from line {result.unsorted_at} on; {result.order}",
            file=sys.stderr,
        )
    print(
        f"{stats.events} events checked against {licence.id} ({len(result.errors)} invalid, "
        f"{stats.duplicates} duplicate, {stats.other_participant} of other participants): "
        f"{len(result.findings)} findings{' (' + by_severity + ')' if by_severity else ''}",
        file=sys.stderr,
    )
    if not result.usable:
        # Nothing was judged, so "no breach" would be a claim the check never made.
        raise Unusable(
            f"{source}: no valid event of participant {licence.participant} was read "
            f"({len(result.errors)} invalid lines, read as {read_format}; see --input-format)"
        )
    return EXIT_FINDINGS if result.failed else EXIT_OK


def cmd_licence_validate(args: argparse.Namespace) -> int:
    licence = _licence(args.file)
    kinds = sorted({rule.kind for rule in licence.rules})
    print(
        f"{args.file}: valid licence {licence.id} for {licence.participant}, {len(licence.rules)} rules "
        f"({', '.join(kinds)}), {licence.header.valid_from.isoformat()} to "
        f"{licence.header.valid_until.isoformat()}"
    )
    return EXIT_OK


def _check_day(day: str | None) -> None:
    """``--day`` is a calendar date, YYYY-MM-DD: an empty one (an unset variable) is refused, not taken for
    "the default day", and so is an impossible one (2025-13-01), which used to end as an internal error."""
    import datetime as dt
    import re

    if day is None:
        return
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", day) is None:
            raise ValueError("not YYYY-MM-DD")
        dt.date.fromisoformat(day)
    except ValueError as exc:
        raise Unusable(f"--day {day!r} is not a calendar date YYYY-MM-DD ({exc})") from None


def cmd_simulate(args: argparse.Namespace) -> int:
    from sandboxwatch.simulator import SimulationConfig, SimulationTooSmall, simulate_to_files

    licence = _licence(args.licence)
    _check_day(args.day)
    config = SimulationConfig(
        accounts=args.accounts,
        seed=args.seed,
        day=args.day,
        target_events=args.events,
        violations=not args.clean,
    )
    try:
        summary = simulate_to_files(licence, config, Path(args.out), Path(args.truth) if args.truth else None)
    except SimulationTooSmall as exc:
        raise Unusable(str(exc)) from None
    except OSError as exc:
        if exc.filename is None and not args.truth:
            raise unwritable("--out", args.out, exc) from None
        if exc.filename is None:  # a write that failed (no space): the error does not say which file
            outputs = f"--out {args.out}" + (f", --truth {args.truth}" if args.truth else "")
            raise Unusable(f"cannot write the output ({outputs}): {exc.strerror}") from None
        option = "--truth" if args.truth and str(exc.filename) == args.truth else "--out"
        raise unwritable(option, str(exc.filename), exc) from None
    print(summary, file=sys.stderr)
    return EXIT_OK


def cmd_up(args: argparse.Namespace) -> int:
    from sandboxwatch.alerts.health_endpoint import EndpointError
    from sandboxwatch.embedded import DataDirBusy, UnusableEvents
    from sandboxwatch.ingest.retry import ConnectorError
    from sandboxwatch.ingest.settings import SettingsError, load_chain_settings

    _licence(args.licence)
    _data_dir(Path(args.data_dir))
    if args.events and not Path(args.events).is_file():
        what = "not a regular file" if Path(args.events).exists() else "no such file"
        raise Unusable(f"{args.events}: cannot read the events file: {what}")
    try:
        if args.chain_config:
            load_chain_settings(Path(args.chain_config))
        return _up(args)
    except (SettingsError, ConnectorError, DataDirBusy, EndpointError, UnusableEvents) as exc:
        raise Unusable(str(exc)) from None


def _data_dir(path: Path) -> None:
    """The data dir must be a directory ``up`` can create and write, checked before anything is started or
    published (a regular file there used to end in an internal error after the replay)."""
    if path.exists() and not path.is_dir():
        raise Unusable(f"--data-dir {path}: not a directory; name a directory for the embedded store and broker")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Unusable(f"--data-dir {path}: cannot be created: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise Unusable(f"--data-dir {path}: not writable")


def _up(args: argparse.Namespace) -> int:
    from sandboxwatch.embedded import UpOptions, up

    return up(
        UpOptions(
            licence=Path(args.licence),
            data_dir=Path(args.data_dir),
            events=Path(args.events) if args.events else None,
            accounts=args.accounts,
            seed=args.seed,
            metrics_port=args.metrics_port,
            once=args.once,
            chain_config=Path(args.chain_config) if args.chain_config else None,
            rpc=args.rpc,
            input_format=args.events_format,
            batch_size=args.batch_size,
        )
    )


def cmd_run(args: argparse.Namespace) -> int:
    from sandboxwatch.alerts.health_endpoint import EndpointError
    from sandboxwatch.streams.worker import run, settings_from

    for path in args.licence:
        _licence(str(path))
    try:
        return run(settings_from(args))
    except EndpointError as exc:
        raise Unusable(str(exc)) from None


def cmd_alerts_render(args: argparse.Namespace) -> int:
    from sandboxwatch.alerts.render_files import write

    licences = [_licence(path) for path in args.licence]
    try:
        written = write(Path(args.out_dir), licences)
    except OSError as exc:
        raise unwritable("--out-dir", str(exc.filename or args.out_dir), exc) from None
    for path in written:
        print(path, file=sys.stderr)
    return EXIT_OK


def cmd_alerts_recorder(args: argparse.Namespace) -> int:
    from sandboxwatch.alerts.notification_recorder import NotificationRecorder, TokenError, load_token
    from sandboxwatch.history_cli import open_store

    try:
        token = load_token(args.token_file)
    except TokenError as exc:
        print(f"sandboxwatch alerts recorder: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    server = NotificationRecorder(open_store(args.clickhouse, create=True), token).server(args.host, args.port)
    print(f"recording Alertmanager notifications at http://{args.host}:{args.port}/notify/<receiver>", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return EXIT_OK


DESCRIPTION = """A licence-compliance monitor for regulatory sandboxes: self-check a participant's events
against its licence, run the live monitor, query the stored record.
Each command's options: sandboxwatch COMMAND --help."""
EPILOG = """exit status (every command; docs/cli.md):
  0  done: no breach or critical finding
  1  a breach or critical finding (check, up --once), a trail problem (audit verify), not compliant
  2  unusable input: a bad licence, settings, option or file; nothing valid read; a data dir in use;
     a store that cannot be used or reached; an output that cannot be written
  3  an internal error (a bug), reported in one line
  4  findings summary: no event of the participant in the period (nothing judged)
  70 a stream worker whose agent failed (run, up)"""


class Parser(argparse.ArgumentParser):
    """Usage errors in one line (exit 2), like every other refusal: the option and the reason, and where
    the help is, rather than the whole usage block before them."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_UNUSABLE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (the exit status table keeps its lines), and every option's default shown
    unless its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if not text or "default" in text or not action.option_strings:
            return text
        if action.default in (None, False, argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


def _describe(parser: argparse.ArgumentParser) -> None:
    """Every (sub)command gets the formatter, and its one-line help as its description when it has none."""
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if not sub.description and helps.get(name):
                    text = str(helps[name]).rstrip(".")
                    sub.description = text[:1].upper() + text[1:] + "."
                _describe(sub)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 < value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"must be from 1 to 1000000, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="sandboxwatch", description=DESCRIPTION, epilog=EPILOG)
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="self-check events against a licence")
    check.add_argument("--licence", required=True, help="licence YAML file")
    check.add_argument("--events", required=True, help="events file (JSONL or CSV), '-' for stdin")
    check.add_argument("--format", choices=sorted(WRITERS), default="jsonl", help="findings format")
    check.add_argument("--out", help="write findings here instead of standard output")
    check.add_argument("--as-of", help="judge deadlines at this RFC 3339 time instead of the latest event")
    check.add_argument(
        "--input-format",
        "--events-format",
        dest="events_format",
        choices=("jsonl", "csv"),
        help="events format (default: from the content: '{' starts JSONL, an event_id,type,... header CSV)",
    )
    check.set_defaults(run=cmd_check)

    licence = commands.add_parser("licence", help="licence file tools")
    licence_commands = licence.add_subparsers(dest="licence_command", required=True)
    validate = licence_commands.add_parser("validate", help="validate a licence file")
    validate.add_argument("file", help="licence YAML file")
    validate.set_defaults(run=cmd_licence_validate)

    simulate = commands.add_parser("simulate", help="write a realistic simulated pilot day with violations")
    simulate.add_argument("--licence", required=True, help="licence YAML file: the day breaks each of its rules")
    simulate.add_argument("--out", required=True, help="events JSONL file to write")
    simulate.add_argument("--truth", help="ground-truth JSON file of injected violations")
    simulate.add_argument("--accounts", type=SIMULATED_ACCOUNTS, default=3000, help="customer accounts")
    simulate.add_argument(
        "--events",
        type=SIMULATED_EVENTS,
        default=0,
        help="exactly this many events, injected violations included (0: a natural day for --accounts)",
    )
    simulate.add_argument("--seed", type=int, default=1, help="random seed: the same seed writes the same day")
    simulate.add_argument("--day", help="local date of the simulated day (default: inside the licence term)")
    simulate.add_argument("--clean", action="store_true", help="inject no violations")
    simulate.set_defaults(run=cmd_simulate)

    up = commands.add_parser("up", help="embedded live monitor: local broker + chdb, replaying a simulated day")
    up.add_argument("--licence", default="config/licences/da-nang-pilot.yaml", help="licence YAML file")
    up.add_argument("--events", help="replay this events file (read as check reads it) instead of a simulated day")
    up.add_argument(
        "--input-format",
        "--events-format",
        dest="events_format",
        choices=("jsonl", "csv"),
        help="events format (default: from the content, as check)",
    )
    up.add_argument(
        "--batch-size",
        type=_positive,
        default=5000,
        help="messages the monitor takes per batch (the findings do not depend on it)",
    )
    up.add_argument("--data-dir", default=".sandboxwatch", help="where the embedded store and broker live")
    up.add_argument("--accounts", type=SIMULATED_ACCOUNTS, default=3000, help="customer accounts of the simulated day")
    up.add_argument("--seed", type=int, default=1, help="random seed of the simulated day")
    up.add_argument("--metrics-port", type=port_number, default=9464, help="port of /metrics, /live and /ready")
    up.add_argument(
        "--once",
        action="store_true",
        help="exit after the replay instead of serving metrics: 1 if the store then holds a breach or critical "
        "finding, 0 if not, 2 on unusable input or a data dir in use, 70 if the monitor agent failed",
    )
    up.add_argument("--chain-config", help="also follow a chain with these settings (config/ingest/chain.yaml)")
    up.add_argument("--rpc", help="JSON-RPC URL of the node to follow (e.g. a local anvil)")
    up.set_defaults(run=cmd_up)

    alerts = commands.add_parser("alerts", help="Prometheus alerting rules generated from licences")
    alerts_commands = alerts.add_subparsers(dest="alerts_command", required=True)
    render = alerts_commands.add_parser("render", help="write rules, promtool tests and pipeline-health rules")
    render.add_argument("--licence", action="append", required=True, help="licence file (repeatable)")
    render.add_argument("--out-dir", default="deploy", help="folder for prometheus/ and alertmanager/ files")
    render.set_defaults(run=cmd_alerts_render)
    recorder = alerts_commands.add_parser("recorder", help="store every Alertmanager notification in ClickHouse")
    add_store_options(recorder)
    recorder.add_argument("--host", default="127.0.0.1", help="address to listen on")
    recorder.add_argument("--port", type=port_number, default=9095, help="port to listen on")
    recorder.add_argument(
        "--token-file", help="bearer token posts must carry (else $SANDBOXWATCH_RECORDER_TOKEN); required"
    )
    recorder.set_defaults(run=cmd_alerts_recorder)

    from sandboxwatch.cases_cli import add_case_commands
    from sandboxwatch.history_cli import add_history_commands
    from sandboxwatch.ingest_cli import add_ingest_commands
    from sandboxwatch.sanctions_cli import add_sanctions_commands
    from sandboxwatch.streams.worker_args import add_worker_arguments

    add_ingest_commands(commands)
    add_sanctions_commands(commands)
    add_history_commands(commands)
    add_case_commands(commands)

    run = commands.add_parser("run", help="stream worker against real Kafka and ClickHouse")
    add_worker_arguments(run)
    run.set_defaults(run=cmd_run)
    _describe(parser)
    return parser


def is_project_error(exc: BaseException) -> bool:
    """An exception type this project defines (every part is imported as ``sandboxwatch.<part>``)."""
    return type(exc).__module__.split(".", 1)[0] == "sandboxwatch"


def one_line(exc: BaseException) -> str:
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())[:1000] or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tune_for_throughput()
    try:
        code: int = args.run(args)
        sys.stdout.flush()
    except (Unusable, StoreError) as exc:
        print(f"sandboxwatch: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:
        if not _output_failed(exc):
            return _internal(exc)
        # The output could not be written (a full disk, /dev/full): what was asked for was not delivered.
        _discard_stdout()
        print(f"sandboxwatch: cannot write the output: {exc.strerror}", file=sys.stderr)
        return EXIT_UNUSABLE
    except Exception as exc:
        if is_project_error(exc):
            # One of the project's own errors (a licence, settings, checkpoint, key file or service that
            # cannot be used) that a command did not turn into Unusable: the input's fault, said in one line.
            print(f"sandboxwatch: {one_line(exc)}", file=sys.stderr)
            return EXIT_UNUSABLE
        return _internal(exc)
    return code


def _internal(exc: BaseException) -> int:
    """A bug, not the input's fault: its own code and one line, never exit 1."""
    detail = str(exc).splitlines()[0][:300] if str(exc) else "no detail"
    print(f"sandboxwatch: internal error ({type(exc).__name__}: {detail}); please report it", file=sys.stderr)
    return EXIT_INTERNAL


def _output_failed(exc: OSError) -> bool:
    """Whether an OSError is an output that could not be written for want of room or a working device (a
    full disk, /dev/full, a file too large): the environment's to fix, never a bug. The files a command
    names are checked where they are written (``--out``); this is what is left: standard output."""
    import errno

    return exc.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG)


def _discard_stdout() -> None:
    """Point standard output at /dev/null, so the interpreter's own flush at exit does not fail again and
    print a traceback of its own after the one line."""
    import os

    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


if __name__ == "__main__":
    raise SystemExit(main())
