"""One side of the differential harness (issue 18's adversary): runs the code on PYTHONPATH (main's or a
candidate's checkout) over the corpus that gen_inputs.py wrote, and writes every output to OUT_DIR, one file
per case, for compare.py to hold byte for byte against the other side's.

    PYTHONPATH=<checkout> python tests/throughput_diff/runner.py check|monitor|snap-make|snap-resume IN OUT [FILTER]

check: ``sandboxwatch check`` (cli.main in this process, the files in turn, then again in reverse order, so a
memo that leaks from one file or licence into the next shows): stdout, stderr and the exit code.
monitor: streams.monitor.Monitor on the embedded store: every outcome's findings and dead letters, then the
events, findings and dead-letter rows read back from the store, and the counters.
snap-make: main's engines pickled mid-stream (engine_snapshots.dump). snap-resume: those restored by this
code, run to the end of the stream; their findings.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import pickle
import sys
import traceback
import zlib
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LICENCES = {
    "dn": ROOT / "config" / "licences" / "da-nang-pilot.yaml",
    "nat": ROOT / "config" / "licences" / "national-pilot.yaml",
}


def _inputs(folder: Path, only: str) -> list[Path]:
    """The corpus's files whose name holds one of ``only``'s comma-separated parts (all when empty)."""
    parts = only.split(",")
    found = [*folder.glob("*.jsonl"), *folder.glob("*.csv")]
    return sorted(p for p in found if any(part in p.name for part in parts))


def run_cli(argv: list[str]) -> tuple[bytes, bytes, int]:
    from sandboxwatch import cli

    out, err = io.BytesIO(), io.BytesIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", errors="strict", newline="\n", write_through=True)
    stderr = io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace", newline="\n", write_through=True)
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 99
        except BaseException:
            stderr.write("CRASH " + traceback.format_exc())
            code = 98
        stdout.flush()
        stderr.flush()
    return out.getvalue(), err.getvalue(), code


def check(inputs: Path, out: Path, only: str) -> None:
    files = _inputs(inputs, only)
    cases = []
    for path in files:
        tag = path.name.split("-")[0]
        cases.append((path, tag))
        if "hostile" in path.name or "sim-s3" in path.name or "memo" in path.name:
            cases.append((path, "nat" if tag == "dn" else "dn"))  # another participant's file
    for rnd, order in enumerate((cases, cases[::-1])):
        for path, tag in order:
            name = f"check-{path.stem}--{tag}"
            stdout, stderr, code = run_cli(["check", "--licence", str(LICENCES[tag]), "--events", str(path)])
            stderr = stderr.replace(str(path).encode(), b"<FILE>")
            if rnd == 0:
                (out / f"{name}.out").write_bytes(stdout)
                (out / f"{name}.err").write_bytes(stderr + f"\nEXIT {code}\n".encode())
            else:  # the reverse pass must give what the forward pass gave (no memo leaks between files)
                same = (out / f"{name}.out").read_bytes() == stdout and (out / f"{name}.err").read_bytes() == (
                    stderr + f"\nEXIT {code}\n".encode()
                )
                if not same:
                    (out / f"{name}.reverse-pass-differs").write_bytes(stdout + b"\n----\n" + stderr)
    # And the CSV writer on a couple of files.
    for path in files[:4]:
        tag = path.name.split("-")[0]
        stdout, stderr, code = run_cli(
            ["check", "--licence", str(LICENCES[tag]), "--events", str(path), "--format", "csv"]
        )
        (out / f"check-csv-{path.stem}.out").write_bytes(stdout + f"\nEXIT {code}\n".encode())


def parse(inputs: Path, out: Path, only: str) -> None:
    """``parse_json_line`` over every line of each file (as the stream reads a batch: split at line feeds),
    each outcome written out: the event's every field (repr), digest and zone, or the error's every field.
    Each file twice in one process, so a remembered value that changes a later outcome shows."""
    from sandboxwatch.rules_engine.event_reader import parse_json_line

    for rnd in range(2):
        for path in _inputs(inputs, only):
            lines = path.read_bytes().decode("utf-8", "surrogateescape").split("\n")
            rows = []
            for number, line in enumerate(lines, 1):
                try:
                    item = parse_json_line(line, "s", number)
                    zone = getattr(getattr(item, "ts", None), "tzinfo", None)
                    rows.append(f"{number}\t{item!r}\t{getattr(item, 'digest', '-')}\t{zone!r}")
                except BaseException as exc:
                    rows.append(f"{number}\tCRASH {type(exc).__name__}: {exc}")
            text = "\n".join(rows).encode("utf-8", "backslashreplace")
            name = out / f"parse-{path.stem}.txt"
            if rnd == 0:
                name.write_bytes(text)
            elif name.read_bytes() != text:
                (out / f"parse-{path.stem}.second-pass-differs").write_bytes(text)


def check_licences(inputs: Path, out: Path, licences: Path, only: str) -> None:
    """``check`` with each licence variant (licence_variants.py) on the files of its participant."""
    files = _inputs(inputs, only)
    for licence in sorted(licences.glob("*.yaml")):
        tag = licence.name.split("-")[0]
        for path in files:
            if not path.name.startswith(tag + "-"):
                continue
            stdout, stderr, code = run_cli(["check", "--licence", str(licence), "--events", str(path)])
            stderr = stderr.replace(str(path).encode(), b"<FILE>").replace(str(licence).encode(), b"<LICENCE>")
            (out / f"lic-{licence.stem}-{path.stem}.out").write_bytes(stdout + stderr + f"\nEXIT {code}\n".encode())


def _json(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "b:" + bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return repr(value)


DEAD_FIELDS = ("source", "participant", "field", "reason", "raw", "kind")


def _rows(backend: Any, sql: str) -> list[Any]:
    return sorted((_json(list(row)) for row in backend.rows(sql)), key=lambda r: json.dumps(r, sort_keys=True))


def monitor(inputs: Path, out: Path, only: str, backend: Any = None) -> None:
    """``backend``: an open EmbeddedBackend to use (chdb allows one data directory per process)."""
    import uuid

    from sandboxwatch.alerts.metrics import Metrics
    from sandboxwatch.rules_engine.licence import load_licence
    from sandboxwatch.store.backends import EmbeddedBackend
    from sandboxwatch.store.clickhouse_store import Store
    from sandboxwatch.streams.inbound import InboundMessage
    from sandboxwatch.streams.monitor import Monitor

    own = backend is None
    if own:
        backend = EmbeddedBackend(str(out / "chdb"))
    runs = []
    for path in _inputs(inputs, only):
        if path.suffix != ".jsonl":
            continue
        tag = path.name.split("-")[0]
        messages = pickle.loads(path.with_suffix(".messages.pickle").read_bytes())
        runs.append((path, "batched", [LICENCES[tag]], messages["batched"], 600))
        if any(k in path.name for k in ("hostile", "memo", "mixed-s1", "crlf", "bom", "chars", "perturbed-s3")):
            runs.append((path, "singles", [LICENCES[tag]], messages["singles"], 700))
        if any(k in path.name for k in ("hostile", "mixed-s3")):
            runs.append((path, "both", list(LICENCES.values()), messages["batched"], 5))
    for path, how, licences, pairs, group in runs:
        name = f"monitor-{path.stem}-{how}"
        result: dict[str, Any] = {}
        try:
            backend.database = "d" + uuid.uuid4().hex[:12]
            store = Store(backend)
            store.migrate()
            mon = Monitor([load_licence(p) for p in licences], store, Metrics())
            inbound = [InboundMessage("events", 3, 1000 + i, key, value) for i, (key, value) in enumerate(pairs)]
            outcomes = []
            for first in range(0, len(inbound), group):
                outcomes.append(mon.process_batch(inbound[first : first + group]))
            outcomes.append(mon.flush())
            # A redelivery of the first messages (a restart replays them): nothing new anywhere.
            again = mon.process_batch(inbound[:group])
            result["outcomes"] = [
                {
                    "findings": [f.to_dict() for f in o.findings],
                    "new": [f.finding_id for f in o.new_findings],
                    "dead": [_json({k: getattr(d, k, None) for k in DEAD_FIELDS}) for d in o.dead_letters],
                    "events": o.events,
                    "duplicates": o.duplicates,
                    "lines": o.lines,
                    "offsets": _json(o.last_offsets),
                    "accepted": [
                        (r.source, r.raw, repr(r.event), getattr(r.event, "digest", None)) for r in o.accepted
                    ],
                }
                for o in outcomes
            ]
            result["redelivered"] = {"new": [f.finding_id for f in again.new_findings], "events": again.events}
            db = store.db
            result["events"] = _rows(backend, f"SELECT * EXCEPT (recorded) FROM {db}.events")
            result["findings"] = _rows(backend, f"SELECT * EXCEPT (recorded) FROM {db}.findings")
            result["dead_letters"] = _rows(backend, f"SELECT * EXCEPT (recorded) FROM {db}.dead_letters")
            result["dead_letters_api"] = _json(store.dead_letters())
            samples = []
            for metric in mon.metrics.registry.collect():
                for sample in metric.samples:
                    if sample.name.endswith("_total") and "seconds" not in sample.name:
                        samples.append([sample.name, sorted(sample.labels.items()), sample.value])
            result["counters"] = sorted(samples, key=repr)
            backend.drop_database()
        except BaseException:
            result["CRASH"] = traceback.format_exc()
        (out / f"{name}.json").write_text(json.dumps(result, indent=0, sort_keys=True, ensure_ascii=True))
    if own:
        backend.close()


def _events(path: Path) -> list[Any]:
    from sandboxwatch.rules_engine.event_reader import read_jsonl
    from sandboxwatch.rules_engine.events import Event

    lines = path.read_bytes().decode("utf-8", "surrogateescape").splitlines()
    return [item for _, item in read_jsonl(lines, str(path)) if isinstance(item, Event)]


SNAP_FILES = ("sim-s1", "sim-s2", "perturbed-s1", "perturbed-s2", "mixed-s3", "memo")


def snap_make(inputs: Path, out: Path, only: str) -> None:
    """Main's side: the whole run's findings, and snapshots of the engine at three cuts."""
    from sandboxwatch.rules_engine.engine import Engine
    from sandboxwatch.rules_engine.licence import load_licence
    from sandboxwatch.streams.engine_snapshots import dump

    for path in _inputs(inputs, only):
        if not any(k in path.name for k in SNAP_FILES):
            continue
        tag = path.name.split("-")[0]
        events = _events(path)
        licence = load_licence(LICENCES[tag])
        whole = Engine(licence)
        found = [f.to_dict() for e in events for f in whole.process(e)] + [f.to_dict() for f in whole.flush()]
        for cut in (len(events) // 5, len(events) // 2 + 3, len(events) - 2):
            engine = Engine(licence)
            before = [f.to_dict() for e in events[:cut] for f in engine.process(e)]
            blob = dump(engine)
            (out / f"snap-{path.stem}-{cut}.pickle").write_bytes(
                pickle.dumps({"blob": blob, "cut": cut, "before": before, "whole": found, "licence": tag})
            )


def replace(inputs: Path, out: Path, only: str) -> None:
    """Reference data changing mid-stream (``Engine.replace_rule``, as the monitor's refresh does): the
    blocklist gains addresses the stream uses, the sites list loses one, the assets list gains one; then a
    snapshot of the engine restored and run to the end. The findings of each step."""
    import re

    from sandboxwatch.rules_engine import zone_sharing_pickle
    from sandboxwatch.rules_engine.engine import Engine
    from sandboxwatch.rules_engine.licence import load_licence, parse_licence
    from sandboxwatch.streams.engine_snapshots import dump

    for path in _inputs(inputs, only):
        if not any(k in path.name for k in SNAP_FILES):
            continue
        tag = path.name.split("-")[0]
        events = _events(path)
        text = LICENCES[tag].read_text()
        used = sorted(
            {a for e in events for a in (getattr(e, "address", None), getattr(e, "to_address", None))
             if a and re.fullmatch(r"0x[0-9a-fA-F]{40}", a) and not a.endswith("dead")}
        )  # fmt: skip
        extra = ", ".join(repr(a) for a in used[:5])
        changed = re.sub(r"addresses: \[([^]]*)\]", partial(_with, extra), text)
        changed = re.sub(r"sites: \[([^,\]]*), ", "sites: [", changed)
        changed = re.sub(r"assets: \[([^]]*)\]", r"assets: [\1, BTC]", changed)
        licence, new = load_licence(LICENCES[tag]), parse_licence(changed)
        result: dict[str, Any] = {}
        try:
            engine = Engine(licence)
            third = len(events) // 3
            steps: list[list[Any]] = [[f.to_dict() for e in events[:third] for f in engine.process(e)]]
            for rule in new.rules:
                old = next((r for r in licence.rules if r.id == rule.id), None)
                if old is not None and old != rule:
                    engine.replace_rule(rule)
                    steps.append([f"replaced {rule.id}"])
            steps.append([f.to_dict() for e in events[third : 2 * third] for f in engine.process(e)])
            engine = zone_sharing_pickle.loads(zlib.decompress(dump(engine)))
            steps.append([f.to_dict() for e in events[2 * third :] for f in engine.process(e)])
            steps.append([f.to_dict() for f in engine.flush()])
            result["steps"] = steps
        except BaseException:
            result["CRASH"] = traceback.format_exc()
        (out / f"replace-{path.stem}.json").write_text(json.dumps(result, indent=0, sort_keys=True, ensure_ascii=True))


def _with(extra: str, match: Any) -> str:
    return f"addresses: [{match.group(1)}, {extra}]"


def snap_resume(inputs: Path, out: Path, snaps: Path, only: str) -> None:
    from sandboxwatch.rules_engine import zone_sharing_pickle
    from sandboxwatch.streams import engine_snapshots

    for snap in sorted(snaps.glob("snap-*.pickle")):
        if not any(part in snap.name for part in only.split(",")):
            continue
        saved = pickle.loads(snap.read_bytes())
        stem = snap.name[len("snap-") :].rsplit("-", 1)[0]
        events = _events(inputs / f"{stem}.jsonl")
        blob: bytes = saved["blob"]
        result: dict[str, Any] = {}
        try:
            parts = engine_snapshots.split(blob)
            manifest = engine_snapshots.Manifest("p", 4, len(parts), hashlib.sha256(blob).hexdigest(), "-", {0: 1})
            stored = {engine_snapshots.chunk_key("p", 4, i): part for i, part in enumerate(parts)}
            engine = engine_snapshots.restore(manifest, stored.get)
            if engine is None:
                result["restore"] = "REFUSED (None): the worker would rebuild"
                engine = zone_sharing_pickle.loads(zlib.decompress(blob))
            after = [f.to_dict() for e in events[saved["cut"] :] for f in engine.process(e)]
            after += [f.to_dict() for f in engine.flush()]
            result["resumed_equals_uninterrupted"] = saved["before"] + after == saved["whole"]
            result["after"] = after
            # And this code's own snapshot of the restored engine restores to the same findings.
            again = zone_sharing_pickle.loads(zlib.decompress(engine_snapshots.dump(engine)))
            result["again_digest"] = type(again).__name__
        except BaseException:
            result["CRASH"] = traceback.format_exc()
        (out / f"{snap.stem}.json").write_text(json.dumps(result, indent=0, sort_keys=True, ensure_ascii=True))


def main() -> None:
    mode, inputs, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    only = sys.argv[4] if len(sys.argv) > 4 else ""
    out.mkdir(parents=True, exist_ok=True)
    import sandboxwatch

    (out / f"whose-code-{mode}.txt").write_text(str(Path(sandboxwatch.__file__).resolve()))
    if mode == "check":
        check(inputs, out, only)
    elif mode == "replace":
        replace(inputs, out, only)
    elif mode == "parse":
        parse(inputs, out, only)
    elif mode == "check-licences":
        check_licences(inputs, out, Path(sys.argv[5]), only)
    elif mode == "monitor":
        monitor(inputs, out, only)
    elif mode == "snap-make":
        snap_make(inputs, out, only)
    elif mode == "snap-resume":
        snap_resume(inputs, out, Path(sys.argv[5]) if len(sys.argv) > 5 else out, only)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
