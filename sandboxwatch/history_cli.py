"""History commands over the store, matching the HTTP API: ``findings``, ``audit``, ``backtest``, ``api``.

The CLI runs with the operator's own database credentials, so it reads with the regulator's scope; the
``--participant`` filter narrows it."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sandboxwatch.cli_types import bounded_int, port_number
from sandboxwatch.exit_codes import EXIT_FINDINGS, EXIT_NO_DATA, EXIT_OK, Unusable, unwritable
from sandboxwatch.rules_engine.licence import one_line
from sandboxwatch.rules_engine.plain_text import plain
from sandboxwatch.store_options import OUT_HELP, STORE_HELP, add_store_options


def _time(value: str | None, name: str) -> datetime | None:
    from sandboxwatch.rules_engine.timestamps import parse_timestamp

    if value is None:  # an empty --from/--to (an unset variable) is refused below, not taken for "no bound"
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise Unusable(f"--{name}: {exc}") from None


def _period(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    """``--from`` and ``--to``, refused when the period ends before it starts (an empty period would
    otherwise read as "no data" or "compliant")."""
    since, until = _time(args.since, "from"), _time(args.until, "to")
    if since is not None and until is not None and since > until:
        raise Unusable(f"--from {args.since} is after --to {args.until}: the period ends before it starts")
    return since, until


def shown_url(url: str) -> str:
    """A store URL as a message may print it: without its password."""
    return re.sub(r"^([a-z]+://[^:/@]*):[^@/]*@", r"\1:***@", url)


def check_store_url(url: str) -> None:
    """A server URL the driver can use, checked before anything connects: a malformed one is bad usage (exit
    2, one line naming the option), not an internal error deep inside the driver."""
    if url.startswith("chdb://"):
        return
    shown = shown_url(url)
    if not url.startswith(("clickhouse://", "clickhouses://")):
        raise Unusable(f"--clickhouse: unknown store URL {shown!r}: expected {STORE_HELP}")
    try:
        port = urlsplit(url).port  # raises on a port that is not a number from 0 to 65535
    except ValueError as exc:
        raise Unusable(f"--clickhouse {shown}: not a usable store URL ({exc}); expected {STORE_HELP}") from None
    if port == 0:
        raise Unusable(f"--clickhouse {shown}: not a usable store URL (port 0); expected {STORE_HELP}")


def _chdb_holder(path: Path) -> str | None:
    """Who holds an embedded store's directory, if anyone: chdb (ClickHouse) keeps an exclusive lock on its
    ``status`` file while a process has it open, so a second process cannot open it. Tried without
    waiting; the holder's pid is in the file (and in ``up.lock`` next to it for ``sandboxwatch up``)."""
    import fcntl

    try:
        handle = (path / "status").open("rb")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            found = re.search(rb"PID: (\d+)", handle.read(200))
            return f"pid {found.group(1).decode()}" if found else "another process"
        except OSError:
            return None
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


@contextlib.contextmanager
def _quiet_driver() -> Iterator[None]:
    """The server driver logs a warning with a traceback for every failed connection attempt; the CLI says
    the same in one line (the StoreError), so the driver's log is held back while the store is opened."""
    logger = logging.getLogger("clickhouse_driver")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _store(url: str) -> Any:
    """The store a query reads. An embedded store must already exist: a query that created an empty one
    where a path was mistyped would answer "no findings" about data it never saw (or write into /etc)."""
    return open_store(url)


def open_store(url: str, create: bool = False) -> Any:
    """The store ``--clickhouse`` names, or exit 2 in one line: a malformed URL, a server that cannot be
    reached, an embedded store another process holds, or (unless ``create``: a command that writes, such
    as the alert recorder) an embedded store that does not exist."""
    from sandboxwatch.store.backends import StoreError
    from sandboxwatch.store.clickhouse_store import Store

    check_store_url(url)
    if url.startswith("chdb://") and not create:
        path = Path(url.removeprefix("chdb://").split("?", 1)[0])
        if not (path / "metadata").is_dir():
            what = "is not a directory" if path.exists() and not path.is_dir() else "holds no embedded store"
            raise Unusable(
                f"--clickhouse {url}: {path} {what}; chdb://PATH names the data directory of an embedded store "
                "(DATA_DIR/chdb of 'sandboxwatch up')"
            )
    if url.startswith("chdb://"):
        path = Path(url.removeprefix("chdb://").split("?", 1)[0])
        holder = _chdb_holder(path)
        if holder:
            raise Unusable(
                f"--clickhouse {url}: the data dir {path} is in use by {holder} (a running 'sandboxwatch up' "
                "or another command); an embedded store is opened by one process at a time: stop it, or query "
                "a server store"
            )
    try:
        with _quiet_driver():
            return Store.open(url)
    except OSError as exc:
        raise Unusable(f"--clickhouse {shown_url(url)}: cannot open the store: {exc.strerror or exc}") from None
    except StoreError as exc:
        raise Unusable(f"--clickhouse {shown_url(url)}: {one_line(str(exc))}") from None


def _write(data: bytes | str, out: str | None) -> None:
    if out and out != "-":
        try:
            Path(out).write_bytes(data if isinstance(data, bytes) else data.encode())
        except OSError as exc:
            raise unwritable("--out", out, exc) from None
    elif isinstance(data, bytes):
        sys.stdout.buffer.write(data)
    else:
        sys.stdout.write(data)


def cmd_findings_list(args: argparse.Namespace) -> int:
    from sandboxwatch.store.exports import findings_csv, findings_parquet
    from sandboxwatch.store.history import FindingFilter, History, Scope

    since, until = _period(args)
    filt = FindingFilter(args.participant, args.rule, args.kind, args.severity, since, until, args.q, args.limit, 0)
    rows = History(_store(args.clickhouse)).findings(Scope(), filt)
    if args.format == "parquet":
        if not args.out:
            raise Unusable("--format parquet needs --out FILE")
        _write(findings_parquet(rows), args.out)
    elif args.format == "csv":
        _write(findings_csv(rows), args.out)
    elif args.format == "table":
        lines = [
            f"{r['ts'] or '':<26} {r['participant']:<22} {r['severity']:<8} {r['rule']:<16} {r['message']}"
            for r in rows
        ]
        _write("\n".join(lines) + ("\n" if lines else ""), args.out)
    else:
        _write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), args.out)
    print(f"{len(rows)} findings", file=sys.stderr)
    return EXIT_OK


def cmd_findings_show(args: argparse.Namespace) -> int:
    from sandboxwatch.store.history import History, Scope

    item = History(_store(args.clickhouse)).finding(Scope(), args.finding_id)
    if item is None:
        raise Unusable(f"no finding {args.finding_id}")
    print(json.dumps(item, indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_findings_summary(args: argparse.Namespace) -> int:
    from sandboxwatch.store.history import History, Scope

    since, until = _period(args)
    assert since is not None and until is not None
    result = History(_store(args.clickhouse)).summary(Scope(), args.participant, since, until)
    assert result is not None  # the CLI reads with the regulator's scope
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if result["compliant"] is None:
        print(f"sandboxwatch: {result['no_data']}", file=sys.stderr)
        return EXIT_NO_DATA
    return EXIT_OK if result["compliant"] else EXIT_FINDINGS


# 'audit heads' writes about 100 bytes per participant: 16 MiB is over 100,000 participants.
MAX_HEADS_BYTES = 16 << 20
_ENTRY_HASH = re.compile(r"[0-9a-f]{64}")


def _archived_heads(path: str) -> dict[str, Any]:
    """The heads file 'audit heads' wrote: a JSON object of participant -> {"seq": N, "entry_hash": HEX}.
    Anything else is refused with what was expected, before the store is read."""
    from sandboxwatch.rules_engine.input_files import InputFileError, read_json_object
    from sandboxwatch.store.finding_trail import Head

    not_heads = f"--heads {path}: not a heads file written by 'audit heads'"
    expected = 'a heads file written by \'audit heads\' (an object of participant: {"seq": N, "entry_hash": HEX})'
    try:
        raw = read_json_object(path, MAX_HEADS_BYTES, "--heads", expected)
    except InputFileError as exc:
        raise Unusable(str(exc)) from None
    heads = {}
    for participant, head in raw.items():
        seq = head.get("seq") if isinstance(head, dict) else None
        digest = head.get("entry_hash") if isinstance(head, dict) else None
        if type(seq) is not int or seq < 0 or not isinstance(digest, str) or not _ENTRY_HASH.fullmatch(digest):
            raise Unusable(
                f'{not_heads}: participant {plain(participant)}: needs "seq" (a whole number from 0) and '
                '"entry_hash" (64 hex digits)'
            )
        heads[participant] = Head(seq, digest)
    return heads


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from sandboxwatch.store.finding_trail import TAIL_NOTE

    store = _store(args.clickhouse)
    expected = _archived_heads(args.heads) if args.heads else None
    problems = store.trail.verify(args.participant, expected)
    for problem in problems:
        print(problem.describe())
    heads = store.trail.heads()
    scope = f" for {args.participant}" if args.participant else ""
    if problems:
        print(f"findings trail{scope}: {len(problems)} problem(s): the trail was tampered with", file=sys.stderr)
        return EXIT_FINDINGS
    chained = sum(h.seq for p, h in heads.items() if not args.participant or p == args.participant)
    print(f"findings trail{scope}: intact ({chained} chained findings)", file=sys.stderr)
    if expected is None:
        print(f"not checked without --heads: {TAIL_NOTE}", file=sys.stderr)
    return EXIT_OK


def cmd_audit_heads(args: argparse.Namespace) -> int:
    heads = _store(args.clickhouse).trail.heads()
    text = json.dumps({p: {"seq": h.seq, "entry_hash": h.entry_hash} for p, h in sorted(heads.items())}, indent=2)
    _write(text + "\n", args.out)
    return EXIT_OK


def cmd_backtest(args: argparse.Namespace) -> int:
    from sandboxwatch.rules_engine.licence import LicenceError, load_licence
    from sandboxwatch.store.backtest import BacktestError, backtest, live_licence

    since, until = _period(args)
    assert since is not None and until is not None
    try:
        new = load_licence(args.licence)
        store = _store(args.clickhouse)
        digest = _sha(args.licence)
        live = load_licence(args.live) if args.live else live_licence(store, new.participant, digest)
    except (LicenceError, BacktestError) as exc:
        raise Unusable(str(exc)) from None
    if not args.live and {v[2] for v in store.licence_versions(new.participant)} == {digest}:
        print(
            f"the store holds only this version of {new.participant}'s licence (sha256 {digest[:12]}): it is the "
            "live one, compared with itself (give --live FILE to compare with another)",
            file=sys.stderr,
        )
    result = backtest(store, new, live, since, until)
    lines = []
    for change, findings in (("appears", result.appears), ("disappears", result.disappears)):
        for f in findings:
            if args.format == "jsonl":
                lines.append(json.dumps({"change": change, **f.to_dict()}, ensure_ascii=False))
            else:
                sign = "+" if change == "appears" else "-"
                lines.append(f"{sign} {f.ts.isoformat() if f.ts else '':<26} {f.rule:<16} {f.severity:<8} {f.message}")
    _write("\n".join(lines) + ("\n" if lines else ""), args.out)
    print(result.summary(), file=sys.stderr)
    return EXIT_OK


def _sha(path: str) -> str:
    """The licence's digest as the store records it (Store.record_licence hashes ``licence_body``), so a
    version the monitor loaded is recognised whatever the file's line endings."""
    import hashlib

    from sandboxwatch.rules_engine.licence import licence_body

    return hashlib.sha256(licence_body(path).encode()).hexdigest()


def cmd_api_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from sandboxwatch.api.app import create_app
    from sandboxwatch.api.keys import KeyFileError, load_keys
    from sandboxwatch.api.live_state import LiveState
    from sandboxwatch.cases_cli import due_times
    from sandboxwatch.rules_engine.licence import LicenceError, load_licence
    from sandboxwatch.store.history import History

    due_times(args.case_due)  # a malformed --case-due stops here, before the store is opened
    try:
        keys = load_keys(Path(args.keys))
        licences = [load_licence(path) for path in args.licence or ()]
    except (KeyFileError, LicenceError) as exc:
        raise Unusable(str(exc)) from None
    store = _store(args.clickhouse)
    for licence, path in zip(licences, args.licence or (), strict=True):
        store.record_licence(licence, Path(path))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    live = LiveState(store, {lic.participant: lic for lic in licences})
    app = create_app(History(store), keys, live, args.case_due or "")
    print(f"sandboxwatch API and console on http://{args.host}:{args.port}/ ({len(keys)} keys)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return EXIT_OK


def cmd_api_new_key(args: argparse.Namespace) -> int:
    from sandboxwatch.api.keys import ROLES, hash_key, new_secret

    if args.role not in ROLES:
        raise Unusable(f"--role must be one of {', '.join(ROLES)}")
    if (args.role == "participant") != bool(args.participant):
        raise Unusable("--participant is required for, and only for, the participant role")
    secret = new_secret()
    entry: dict[str, str] = {"name": args.name, "role": args.role}
    if args.participant:
        entry["participant"] = args.participant
    entry["sha256"] = hash_key(secret)
    print(f"key (hand it over once; it is not stored): {secret}", file=sys.stderr)
    print("  - " + json.dumps(entry))
    return EXIT_OK


def add_history_commands(commands: Any) -> None:
    from sandboxwatch.store.history import MAX_LIMIT

    findings = commands.add_parser("findings", help="query stored findings (as the API does)")
    sub = findings.add_subparsers(dest="findings_command", required=True)
    listing = sub.add_parser("list", help="findings by participant, rule, kind, severity, time range, text")
    add_store_options(
        listing,
        participant="only this participant's findings",
        period=("event time from (RFC 3339, included)", "event time to (RFC 3339, included)"),
        out="write here instead of standard output (required for parquet)",
    )
    listing.add_argument("--rule", help="only findings of this licence rule id")
    listing.add_argument("--kind", help="only findings of this rule kind (or built-in kind, e.g. invalid_event)")
    listing.add_argument("--q", help="only findings whose message, subject or id contains this text (case-insensitive)")
    listing.add_argument("--severity", choices=("info", "warning", "breach", "critical"), help="only this severity")
    listing.add_argument(
        "--limit", type=bounded_int(1, MAX_LIMIT), default=10_000, help=f"at most this many findings (1 to {MAX_LIMIT})"
    )
    listing.add_argument(
        "--format", choices=("jsonl", "csv", "parquet", "table"), default="jsonl", help="output format"
    )
    listing.set_defaults(run=cmd_findings_list)
    show = sub.add_parser("show", help="one finding with its evidence events and notes")
    show.add_argument("finding_id", help="the finding's id (finding_id)")
    add_store_options(show)
    show.set_defaults(run=cmd_findings_show)
    summary = sub.add_parser(
        "summary", help="a participant's compliance summary for a period (exit 1 if not compliant, 4 if no data)"
    )
    add_store_options(
        summary,
        participant="the participant to summarise",
        period=("period start (RFC 3339, included)", "period end (RFC 3339, included)"),
        required=("participant", "period"),
    )
    summary.set_defaults(run=cmd_findings_summary)

    audit = commands.add_parser("audit", help="the tamper-evident findings trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="exit 0 if intact, 1 if any row was altered, removed or reordered")
    add_store_options(verify, participant="verify only this participant's chain (default: every chain)")
    verify.add_argument(
        "--heads", help="chain heads archived earlier ('audit heads'): also catches a rewritten or cut-short chain"
    )
    verify.set_defaults(run=cmd_audit_verify)
    heads = audit_sub.add_parser("heads", help="print each participant's chain head, to archive outside the database")
    add_store_options(heads, out="write the heads to this file instead of standard output")
    heads.set_defaults(run=cmd_audit_heads)

    back = commands.add_parser("backtest", help="replay stored events through a new licence version")
    back.add_argument("--licence", required=True, help="the new licence version")
    add_store_options(
        back,
        period=("findings from this event time (RFC 3339)", "findings up to this event time (RFC 3339)"),
        out=OUT_HELP,
        required=("period",),
    )
    back.add_argument("--live", help="the live licence file (default: the version the monitor last loaded)")
    back.add_argument("--format", choices=("table", "jsonl"), default="table", help="output format")
    back.set_defaults(run=cmd_backtest)

    api = commands.add_parser("api", help="the HTTP API and web console")
    api_sub = api.add_subparsers(dest="api_command", required=True)
    serve = api_sub.add_parser("serve", help="serve the API (OpenAPI at /docs) and the console (/)")
    add_store_options(serve)
    serve.add_argument("--keys", required=True, help="YAML file of API key hashes and roles")
    serve.add_argument("--licence", action="append", help="licence file, for pre-checks and utilisation (repeatable)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=port_number, default=8080, help="port to listen on")
    serve.add_argument(
        "--case-due", help="when cases fall due by severity (default critical=1d,breach=3d,warning=10d,info=30d)"
    )
    serve.set_defaults(run=cmd_api_serve)
    new_key = api_sub.add_parser("new-key", help="make a key; prints the key once and the entry for the key file")
    new_key.add_argument("--name", required=True, help="the key's unique name (shown in the audit log)")
    new_key.add_argument("--role", required=True, help="regulator, auditor or participant")
    new_key.add_argument("--participant", help="the participant a participant key is scoped to (that role only)")
    new_key.set_defaults(run=cmd_api_new_key)
