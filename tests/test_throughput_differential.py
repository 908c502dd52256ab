"""Issue 18's differential harness, frozen: this code's outputs on a generated corpus are main's outputs (at
the commit in the fixture's ``made_by``) byte for byte, so throughput work on the parser, the engine or the
store path cannot change one finding, error, digest, stored row or dead letter unseen.

The corpus (tests/throughput_diff/gen_inputs.py, small form) holds both licences' simulated days perturbed
(out of order, duplicates, conflicting duplicates, late events beyond allowed_lateness, after-term events,
retractions, untrusted and refused prices), character-level mutants, the fuzz mutation classes of
tests/test_fuzz_events.py, memo twins (a line, then one that differs slightly: another offset or fraction of
the same time, the same amount text in another field, a name with a blank or case change), hostile lines,
CRLF and BOM files. The outputs: ``sandboxwatch check`` (stdout, stderr, exit code; every file twice, the
second pass in reverse order, so a memo leaking between files or licences shows), the monitor on the embedded
store (every batch's findings and dead letters, the rows read back, the counters), and an engine snapshot
pickled by main's code restored by this one and run to the end.

The full harness (bigger corpus, main and a candidate in separate processes) is tests/throughput_diff/; a
legitimate change of an output (a new finding text) is re-frozen by running tests/throughput_diff/freeze.py
under the new main."""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from sandboxwatch.rules_engine.events import FundsEvent
from sandboxwatch.store.backends import EmbeddedBackend
from tests.throughput_diff import gen_inputs, runner
from tests.throughput_diff.compare import first_difference
from tests.throughput_diff.freeze import FIXTURE, SNAPSHOT, corpus_digest, frozen_form


@pytest.fixture(scope="module")
def frozen() -> dict[str, Any]:
    loaded = json.loads(gzip.decompress(FIXTURE.read_bytes()))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, frozen: dict[str, Any]) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    gen_inputs.build(folder, small=True)
    # The generator (the simulator, tests/test_fuzz_events.py) is not under test: if it changed, the outputs
    # are not comparable and the fixture must be re-frozen under main.
    assert corpus_digest(folder) == frozen["corpus"], "the corpus changed: re-freeze (tests/throughput_diff)"
    return folder


def _differences(folder: Path, frozen: dict[str, Any], prefix: str) -> list[str]:
    expected = {name: value for name, value in frozen["outputs"].items() if name.startswith(prefix)}
    found = {
        f"{prefix}{path.name}": frozen_form(path.name, path.read_bytes())
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith("whose-code")
    }
    problems = [f"{name}: not made by main" for name in sorted(set(found) - set(expected))]
    problems += [f"{name}: missing" for name in sorted(set(expected) - set(found))]
    for name in sorted(set(found) & set(expected)):
        if found[name] != expected[name]:
            if isinstance(found[name], str):
                ours, mains = found[name].split("\n"), expected[name].split("\n")
                line = next((i for i, (a, b) in enumerate(zip(ours, mains, strict=False)) if a != b), None)
                where = "length" if line is None else f"line {line + 1}: {mains[line][:300]!r} -> {ours[line][:300]!r}"
                problems.append(f"{name}: {where}")
            else:
                problems.append(f"{name}: {first_difference(expected[name], found[name])}")
    return problems


def test_check_gives_mains_findings_errors_and_exit_codes(corpus: Path, frozen: dict[str, Any], tmp_path: Path) -> None:
    runner.check(corpus, tmp_path, "")
    assert _differences(tmp_path, frozen, "check/") == []
    # Not vacuous: the corpus holds findings of many kinds, invalid lines and both exit codes.
    text = "".join(v for k, v in frozen["outputs"].items() if k.startswith("check/"))
    assert text.count('"kind":"invalid_event"') > 100 and "EXIT 1" in text and "EXIT 2" in text
    assert all(f'"kind":"{kind}"' in text for kind in ("conflicting_duplicate", "evidence_retracted", "price_refused"))


def test_the_monitor_gives_mains_findings_dead_letters_and_rows(
    corpus: Path, frozen: dict[str, Any], tmp_path: Path, backend: EmbeddedBackend
) -> None:
    runner.monitor(corpus, tmp_path, "", backend)
    assert _differences(tmp_path, frozen, "mon/") == []
    assert not any("CRASH" in v for k, v in frozen["outputs"].items() if k.startswith("mon/"))


def test_an_engine_pickled_by_mains_code_resumes_to_mains_findings(corpus: Path, tmp_path: Path) -> None:
    """The snapshot was pickled by main's code (freeze.py); restored through the workers' path by this code
    and run to the end of the stream, the findings are those of main's engine that never stopped."""
    saved = pickle.loads(SNAPSHOT.read_bytes())
    assert saved["licence"] == "dn" and len(saved["whole"]) > len(saved["before"]) > 0
    name = f"snap-dn-perturbed-s1-{saved['cut']}"
    (tmp_path / f"{name}.pickle").write_bytes(SNAPSHOT.read_bytes())
    runner.snap_resume(corpus, tmp_path, tmp_path, "")
    result = json.loads((tmp_path / f"{name}.json").read_text())
    assert "CRASH" not in result and "restore" not in result, result
    assert result["resumed_equals_uninterrupted"] is True


def test_a_lone_surrogate_in_an_event_column_is_stored_as_a_question_mark(backend: EmbeddedBackend) -> None:
    """Found by the differential harness (issue 18): main's columns were fixed only in a batch whose body held
    a \\u escape, so a lone surrogate elsewhere (a caller building events itself) was refused with its whole
    batch (code 25, retried for ever) or stored as CESU-8 bytes (ED B3 BF). Each text column is now searched."""
    import dataclasses
    import uuid

    from sandboxwatch.rules_engine.event_reader import parse_json_line
    from sandboxwatch.store.clickhouse_store import Store
    from sandboxwatch.store.records import EventRecord

    line = ('{"event_id":"e0","type":"deposit","participant":"p","ts":"2025-11-10T12:00:00+07:00",'
            '"account":"a","asset":"VND","amount":"5","rail":"bank"}')  # fmt: skip
    event = parse_json_line(line, "s", 1)
    assert isinstance(event, FundsEvent)
    backend.database = "t" + uuid.uuid4().hex[:12]
    store = Store(backend)
    store.migrate()
    for index, account in enumerate(("a\ud800b", "a\udcffb")):
        record = EventRecord(dataclasses.replace(event, event_id=f"e{index}", account=account), line, f"s/{index}")
        store.write_events([record], check=False)
    rows = backend.rows(f"SELECT event_id, hex(account) FROM {backend.database}.events ORDER BY event_id")
    assert [tuple(row) for row in rows] == [("e0", "613F62"), ("e1", "613F62")]
