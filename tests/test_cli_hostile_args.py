"""Hostile arguments to every command (issue 13): each probe is the real CLI in a child process (a hang fails
the probe instead of the run), and each must end with its documented exit code (docs/cli.md) and one line on
standard error naming the option or file and the reason: never a traceback, never exit 3 for the user's
input, never a wait on a FIFO or a read of /dev/zero."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandboxwatch.rules_engine.input_files import InputFileError, read_regular_file
from tests.helpers import DA_NANG, account

PARTICIPANT = "alphatrue-basal-pay"


@dataclass(frozen=True)
class Probe:
    name: str
    argv: tuple[str, ...]
    code: int
    fragment: str
    one_line: bool = True
    stdout_to: str | None = None  # a file standard output is redirected to (/dev/full)


def _run(argv: tuple[str, ...], stdout_to: str | None = None, cwd: Path | None = None) -> tuple[int, str, str]:
    out = open(stdout_to, "wb") if stdout_to else subprocess.PIPE  # noqa: SIM115
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sandboxwatch.cli", *argv],
            stdout=out,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            timeout=90,
            check=False,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"sandboxwatch {' '.join(argv)} hung (still running after 90 s)")
    finally:
        if stdout_to:
            out.close()  # type: ignore[union-attr]
    stdout = done.stdout.decode("utf-8", "replace") if done.stdout else ""
    return done.returncode, stdout, done.stderr.decode("utf-8", "replace")


@dataclass(frozen=True)
class Files:
    root: Path
    store: str
    fifo: str
    events: str


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    root = tmp_path_factory.mktemp("hostile")
    store = f"chdb://{root / 'chdb'}"
    licence = root / "licence.yaml"
    licence.write_bytes(DA_NANG.read_bytes())
    # The store is made (one event, the licence as the monitor records it) in a child that exits: chdb lets
    # one process at a time open a data directory.
    setup = (
        "import sys\n"
        "from pathlib import Path\n"
        "from sandboxwatch.rules_engine.event_reader import parse_json_line\n"
        "from sandboxwatch.rules_engine.licence import load_licence\n"
        "from sandboxwatch.store.clickhouse_store import Store\n"
        "from sandboxwatch.store.records import EventRecord\n"
        "line, url, licence = sys.argv[1:]\n"
        "store = Store.open(url)\n"
        "store.write_events([EventRecord(parse_json_line(line, 't', 1), line, 't:1')])\n"
        "store.record_licence(load_licence(licence), Path(licence))\n"
    )
    event = json.dumps(account("c1", participant=PARTICIPANT))
    subprocess.run([sys.executable, "-c", setup, event, store, str(licence)], check=True, timeout=300)
    os.mkfifo(root / "fifo")
    (root / "events.jsonl").write_text(event + "\n")
    (root / "afile").write_text("not a directory\n")
    (root / "list.json").write_text("[1, 2, 3]\n")
    (root / "badseq.json").write_text(json.dumps({PARTICIPANT: {"seq": "x", "entry_hash": "0" * 64}}))
    (root / "bad.yaml").write_text("licence:\n  id: [x\n")
    (root / "latin.yaml").write_bytes(b"licence:\n  id: caf\xe9\n")
    (root / "decimal.yaml").write_text(DA_NANG.read_text().replace("window: 30d", "window: 3.5"))
    for name, size in (("big-16M", (16 << 20) + 1), ("big-256M", (256 << 20) + 1), ("big-1M", (1 << 20) + 1)):
        with (root / name).open("wb") as sparse:  # sparse: a size cap must refuse it before reading
            sparse.truncate(size)
    (root / "long.jsonl").write_text(event + "\n" + '{"pad": "' + "x" * (1 << 21) + '"}\n')
    return Files(root, store, str(root / "fifo"), str(root / "events.jsonl"))


def _probes(f: Files) -> list[Probe]:
    r, s, fifo = f.root, f.store, f.fifo
    lic = str(r / "licence.yaml")
    period = ("--from", "2025-10-01T00:00:00Z", "--to", "2025-10-31T00:00:00Z")
    return [
        # 1. Files that are not regular files: refused at once, never waited on.
        Probe("licence fifo", ("licence", "validate", fifo), 2, "the file is not a regular file (a FIFO)"),
        Probe("check licence fifo", ("check", "--licence", fifo, "--events", f.events), 2, "(a FIFO)"),
        Probe(
            "api keys fifo",
            ("api", "serve", "--clickhouse", s, "--keys", fifo),
            2,
            f"key file {fifo} is not a regular file (a FIFO)",
        ),
        Probe(
            "audit heads fifo",
            ("audit", "verify", "--clickhouse", s, "--heads", fifo),
            2,
            f"--heads {fifo} is not a regular file (a FIFO)",
        ),
        Probe(
            "sanctions source fifo",
            ("sanctions", "import", "--source", fifo, "--out", str(r / "o.txt")),
            2,
            f"--source {fifo} is not a regular file (a FIFO)",
        ),
        Probe(
            "ingest config fifo",
            ("ingest", "exchange", "--config", fifo, "--kafka", "127.0.0.1:1"),
            2,
            f"settings file {fifo} is not a regular file (a FIFO)",
        ),
        Probe(
            "recorder token fifo",
            ("alerts", "recorder", "--clickhouse", s, "--token-file", fifo),
            2,
            f"--token-file {fifo} is not a regular file (a FIFO)",
        ),
        # 2. Devices and huge files: refused by kind or by the size cap, before anything is read.
        Probe(
            "heads /dev/zero",
            ("audit", "verify", "--clickhouse", s, "--heads", "/dev/zero"),
            2,
            "--heads /dev/zero is not a regular file (a character device)",
        ),
        Probe(
            "sanctions /dev/zero",
            ("sanctions", "import", "--source", "/dev/zero", "--out", str(r / "o.txt")),
            2,
            "--source /dev/zero is not a regular file (a character device)",
        ),
        Probe(
            "heads huge",
            ("audit", "verify", "--clickhouse", s, "--heads", str(r / "big-16M")),
            2,
            "big-16M is larger than 16,777,216 bytes",
        ),
        Probe(
            "sanctions huge",
            ("sanctions", "import", "--source", str(r / "big-256M"), "--out", str(r / "o.txt")),
            2,
            "big-256M is larger than 268,435,456 bytes",
        ),
        Probe(
            "keys huge",
            ("api", "serve", "--clickhouse", s, "--keys", str(r / "big-1M")),
            2,
            "big-1M is larger than 1,048,576 bytes",
        ),
        Probe("licence huge", ("licence", "validate", str(r / "big-1M")), 2, "is larger than 1,048,576 bytes"),
        # 3. Heads of the wrong shape.
        Probe(
            "heads a list",
            ("audit", "verify", "--clickhouse", s, "--heads", str(r / "list.json")),
            2,
            "is a list, not a heads file written by 'audit heads' (an object of participant",
        ),
        Probe(
            "heads bad seq",
            ("audit", "verify", "--clickhouse", s, "--heads", str(r / "badseq.json")),
            2,
            f"participant '{PARTICIPANT}': needs \"seq\" (a whole number from 0)",
        ),
        # 4. Store URLs: malformed is bad usage; unreachable is one line (exit 2, docs/cli.md); busy says who.
        Probe(
            "url port not a number",
            ("findings", "list", "--clickhouse", "clickhouse://h:abc/db"),
            2,
            "--clickhouse clickhouse://h:abc/db: not a usable store URL (Port could not be cast",
        ),
        Probe(
            "url bad ipv6",
            ("findings", "list", "--clickhouse", "clickhouse://[::1/db"),
            2,
            "--clickhouse clickhouse://[::1/db: not a usable store URL (Invalid IPv6 URL)",
        ),
        Probe(
            "url port range",
            ("audit", "heads", "--clickhouse", "clickhouse://h:99999/db"),
            2,
            "(Port out of range 0-65535)",
        ),
        Probe(
            "url unreachable",
            ("findings", "list", "--clickhouse", "clickhouse://u:secret@127.0.0.1:1/db"),
            2,
            "--clickhouse clickhouse://u:***@127.0.0.1:1/db: ClickHouse server: ",
        ),
        # 5. Values out of range: refused at parse time with the option and the bounds.
        Probe(
            "case-due overflow",
            ("cases", "list", "--clickhouse", s, "--case-due", "critical=99999999999d"),
            2,
            "--case-due: 'critical=99999999999d': at most 3650 days",
        ),
        Probe(
            "case-due twice",
            ("cases", "list", "--clickhouse", s, "--case-due", "critical=1d,critical=2d"),
            2,
            "--case-due: 'critical=2d': critical is given twice",
        ),
        Probe(
            "case-due zero",
            ("cases", "list", "--clickhouse", s, "--case-due", "critical=0h"),
            2,
            "--case-due: 'critical=0h': at least 1h",
        ),
        Probe(
            "api case-due overflow",
            ("api", "serve", "--clickhouse", s, "--keys", fifo, "--case-due", "breach=99999999999h"),
            2,
            "at most 3650 days",
        ),
        Probe("check events /dev/zero", ("check", "--licence", lic, "--events", "/dev/zero"), 2, "a device, not"),
        Probe(
            "check out is the events",
            ("check", "--licence", lic, "--events", f.events, "--out", f.events),
            2,
            "is the events file: writing the findings there would destroy it",
        ),
        Probe(
            "check out is the licence",
            ("check", "--licence", lic, "--events", f.events, "--out", lic),
            2,
            "is the licence: writing the findings there would destroy it",
        ),
        Probe(
            "simulate accounts overflow",
            ("simulate", "--licence", lic, "--out", str(r / "sim.jsonl"), "--accounts", "999999999999"),
            2,
            "argument --accounts: must be from 1 to 1000000, not 999999999999",
        ),
        Probe(
            "simulate events overflow",
            ("simulate", "--licence", lic, "--out", str(r / "sim.jsonl"), "--events", "99999999999999"),
            2,
            "argument --events: must be from 0 to 20000000, not 99999999999999",
        ),
        Probe(
            "up accounts 0",
            ("up", "--licence", lic, "--data-dir", str(r / "up0"), "--accounts", "0", "--once"),
            2,
            "argument --accounts: must be from 1 to 1000000, not 0",
        ),
        Probe(
            "findings limit 0",
            ("findings", "list", "--clickhouse", s, "--limit", "0"),
            2,
            "argument --limit: must be from 1 to 100000, not 0",
        ),
        Probe(
            "findings limit -1",
            ("findings", "list", "--clickhouse", s, "--limit=-1"),
            2,
            "argument --limit: must be from 1 to 100000, not -1",
        ),
        Probe(
            "cases limit 0",
            ("cases", "list", "--clickhouse", s, "--limit", "0"),
            2,
            "argument --limit: must be from 1 to 100000, not 0",
        ),
        Probe(
            "summary from after to",
            (
                "findings",
                "summary",
                "--clickhouse",
                s,
                "--participant",
                PARTICIPANT,
                "--from",
                "2025-10-02T00:00:00Z",
                "--to",
                "2025-10-01T00:00:00Z",
            ),
            2,
            "--from 2025-10-02T00:00:00Z is after --to 2025-10-01T00:00:00Z",
        ),
        # An empty time (an unset shell variable: --as-of "$AS_OF") is not "no time": refused, never a silent
        # default (deadlines judged at another instant) nor an internal error.
        Probe(
            "check empty as-of",
            ("check", "--licence", lic, "--events", f.events, "--as-of", ""),
            2,
            "--as-of: not an RFC 3339 timestamp: ''",
        ),
        Probe(
            "summary empty from",
            (
                "findings",
                "summary",
                "--clickhouse",
                s,
                "--participant",
                PARTICIPANT,
                "--from",
                "",
                "--to",
                "2025-10-01T00:00:00Z",
            ),
            2,
            "--from: not an RFC 3339 timestamp: ''",
        ),
        Probe(
            "list empty to",
            ("findings", "list", "--clickhouse", s, "--to", ""),
            2,
            "--to: not an RFC 3339 timestamp: ''",
        ),
        Probe(
            "backtest empty to",
            ("backtest", "--licence", lic, "--clickhouse", s, "--from", "2025-10-01T00:00:00Z", "--to", ""),
            2,
            "--to: not an RFC 3339 timestamp: ''",
        ),
        Probe(
            "up metrics port",
            ("up", "--licence", lic, "--data-dir", str(r / "up1"), "--metrics-port", "99999", "--once"),
            2,
            "argument --metrics-port: must be from 0 to 65535, not 99999",
        ),
        Probe(
            "run metrics port",
            ("run", "--kafka", "127.0.0.1:1", "--clickhouse", s, "--licence", lic, "--metrics-port", "70000"),
            2,
            "argument --metrics-port: must be from 0 to 65535",
        ),
        Probe(
            "api port",
            ("api", "serve", "--clickhouse", s, "--keys", fifo, "--port", "-5"),
            2,
            "argument --port: must be from 0 to 65535, not -5",
        ),
        Probe(
            "up data dir a file",
            ("up", "--licence", lic, "--data-dir", str(r / "afile"), "--once"),
            2,
            f"--data-dir {r / 'afile'}: not a directory",
        ),
        # 6. Outputs that cannot be written: exit 2 naming the file, never a traceback.
        Probe(
            "out missing dir",
            ("findings", "list", "--clickhouse", s, "--out", str(r / "missing" / "x")),
            2,
            f"--out {r / 'missing' / 'x'}: cannot write: No such file or directory",
        ),
        Probe(
            "out a directory",
            ("audit", "heads", "--clickhouse", s, "--out", str(r)),
            2,
            f"--out {r}: cannot write: Is a directory",
        ),
        Probe(
            "out /dev/full",
            ("findings", "list", "--clickhouse", s, "--format", "csv", "--out", "/dev/full"),
            2,
            "--out /dev/full: cannot write: No space left on device",
        ),
        Probe(
            "check out /dev/full",
            ("check", "--licence", lic, "--events", str(r / "long.jsonl"), "--out", "/dev/full"),
            2,
            "--out /dev/full: cannot write: No space left on device",
            one_line=False,
        ),
        Probe(
            "stdout /dev/full",
            ("audit", "heads", "--clickhouse", s),
            2,
            "sandboxwatch: cannot write the output: No space left on device",
            stdout_to="/dev/full",
        ),
        Probe(
            "simulate out /dev/full",
            ("simulate", "--licence", lic, "--out", "/dev/full", "--accounts", "5"),
            2,
            "--out /dev/full: cannot write: No space left on device",
        ),
        Probe(
            "render out-dir a file",
            ("alerts", "render", "--licence", lic, "--out-dir", str(r / "afile")),
            2,
            f"--out-dir {r / 'afile'}/prometheus/rules: cannot write: Not a directory",
        ),
        # 7. Messages: one line, positions, plain values.
        Probe(
            "licence yaml error",
            ("licence", "validate", str(r / "bad.yaml")),
            2,
            f"{r / 'bad.yaml'}:3:1: not valid YAML: expected ',' or ']', but got '<stream end>' "
            "(while parsing a flow sequence at line 2, column 7)",
        ),
        Probe(
            "licence latin-1",
            ("licence", "validate", str(r / "latin.yaml")),
            2,
            f"{r / 'latin.yaml'}:2:10: not UTF-8 text (byte offset 18: 0xe9)",
        ),
        Probe(
            "licence decimal",
            ("licence", "validate", str(r / "decimal.yaml")),
            2,
            "field 'window': duration must be a string like '24h', not 3.5",
        ),
        Probe(
            "long line",
            ("check", "--licence", lic, "--events", str(r / "long.jsonl")),
            0,
            "long.jsonl:2: a line longer than 1048576 characters",
            one_line=False,
        ),
        Probe(
            "backtest same licence",
            ("backtest", "--licence", lic, "--clickhouse", s, *period),
            0,
            "it is the live one, compared with itself",
            one_line=False,
        ),
    ]


def _judge(files: Files, index: int, probe: Probe) -> str | None:
    # Each probe gets its own copy of the store (chdb lets one process at a time open one), so the probes
    # run side by side.
    copy = files.root / f"chdb-{index}"
    shutil.copytree(files.store.removeprefix("chdb://"), copy, symlinks=True)
    argv = tuple(f"chdb://{copy}" if arg == files.store else arg for arg in probe.argv)
    code, _, err = _run(argv, probe.stdout_to)
    lines = err.splitlines()
    problems = []
    if code != probe.code:
        problems.append(f"exit {code}, expected {probe.code}")
    if probe.fragment not in err:
        problems.append(f"stderr lacks {probe.fragment!r}")
    if "Traceback" in err or "Decimal(" in err or '"<unicode string>"' in err:
        problems.append("a traceback or a Python repr in stderr")
    if probe.one_line and len(lines) != 1:
        problems.append(f"{len(lines)} lines on stderr, expected one")
    return f"{probe.name}: {'; '.join(problems)}\n    stderr: {err[:600]!r}" if problems else None


def test_every_hostile_argument_ends_with_its_code_and_one_line(files: Files) -> None:
    probes = _probes(files)
    assert len(probes) == 53
    with ThreadPoolExecutor(4) as pool:
        verdicts = list(pool.map(lambda item: _judge(files, *item), enumerate(probes)))
    failures = [verdict for verdict in verdicts if verdict]
    assert failures == [], "\n".join(failures)


@pytest.fixture
def busy_store(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """An embedded store held open by another process, as a running ``sandboxwatch up`` holds its own."""
    path = tmp_path / "chdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom sandboxwatch.store.clickhouse_store import Store\nstore = Store.open(sys.argv[1])\n"
            "print('open', flush=True)\nsys.stdin.read()\n",
            f"chdb://{path}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        yield path, holder.pid
    finally:
        holder.communicate("", timeout=60)


def test_a_store_held_by_another_process_is_named_in_one_line(busy_store: tuple[Path, int]) -> None:
    path, pid = busy_store
    code, out, err = _run(("findings", "list", "--clickhouse", f"chdb://{path}"))
    assert code == 2, err
    assert f"the data dir {path} is in use by pid {pid}" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err and out == ""


def test_the_shared_reader_refuses_a_file_that_grows_past_the_cap_while_read(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.write_bytes(b"x" * 10)
    assert read_regular_file(small, 10, "--heads")[0] == b"x" * 10
    with pytest.raises(InputFileError, match=r"^--heads .*small is larger than 9 bytes$"):
        read_regular_file(small, 9, "--heads")
    with pytest.raises(InputFileError, match=r"cannot be read: No such file or directory"):
        read_regular_file(tmp_path / "missing", 9, "--heads")


def test_check_still_reads_its_events_from_a_fifo(tmp_path: Path) -> None:
    """Events are a stream by design (docs/cli.md): a named pipe is read, not refused like a config file."""
    fifo = tmp_path / "events"
    os.mkfifo(fifo)
    check = subprocess.Popen(
        [sys.executable, "-m", "sandboxwatch.cli", "check", "--licence", str(DA_NANG), "--events", str(fifo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with fifo.open("w") as writer:  # blocks until check opens the pipe for reading
        writer.write(json.dumps(account("c1", participant=PARTICIPANT)) + "\n")
    out, err = check.communicate(timeout=120)
    assert check.returncode == 0, err
    assert out == "" and "1 events checked against DN-136-PILOT-01" in err


def test_check_sorts_events_from_a_fifo_that_are_out_of_order(tmp_path: Path) -> None:
    """A pipe cannot be opened twice: events out of time order are spooled and sorted, not waited for."""
    fifo = tmp_path / "events"
    os.mkfifo(fifo)
    late = account("c2", participant=PARTICIPANT)
    early = account("c1", participant=PARTICIPANT)
    early["ts"] = "2025-09-15T10:00:00+07:00"
    check = subprocess.Popen(
        [sys.executable, "-m", "sandboxwatch.cli", "check", "--licence", str(DA_NANG), "--events", str(fifo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with fifo.open("w") as writer:
        writer.write(json.dumps(late) + "\n" + json.dumps(early) + "\n")
    try:
        out, err = check.communicate(timeout=120)
        assert out == ""
    except subprocess.TimeoutExpired:
        check.kill()
        pytest.fail("check waited for a second writer on the FIFO")
    assert check.returncode == 0, err
    assert f"{fifo}: not in event-time order from line 2 on" in err
    assert "2 events checked against DN-136-PILOT-01" in err
