"""Freezes main's outputs on the small corpus for tests/test_throughput_differential.py: run it under the code
whose outputs are the reference (main's), never under a change being judged.

    PYTHONPATH=<main checkout> python tests/throughput_diff/freeze.py
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.throughput_diff import gen_inputs, runner

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "throughput_differential"
FIXTURE = FOLDER / "expected.json.gz"
# An engine pickled by main's code mid-stream (with the whole run's findings), as runner.snap_make writes it.
SNAPSHOT = FOLDER / "snapshot-dn-perturbed.pickle"


def corpus_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.jsonl")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def digested(section: Any) -> dict[str, Any]:
    text = json.dumps(section, sort_keys=True).encode()
    return {"count": len(section), "sha256": hashlib.sha256(text).hexdigest()}


def frozen_form(name: str, data: bytes) -> Any:
    """What the fixture keeps of an output: check's whole; of the monitor's, the findings and dead letters
    whole as each batch gave them, and the rows read back from the store and the accepted events as a count
    and digest each (they repeat the rest, and are most of its bytes)."""
    if not name.endswith(".json"):
        return data.decode("utf-8", "surrogateescape")
    result = json.loads(data)
    for outcome in result.get("outcomes", []):
        outcome["accepted"] = digested(outcome["accepted"])
    for key in ("events", "findings", "dead_letters", "dead_letters_api"):
        if key in result:
            result[key] = digested(result[key])
    return result


def outputs(folder: Path) -> dict[str, Any]:
    return {
        str(path.relative_to(folder)): frozen_form(path.name, path.read_bytes())
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "chdb" not in path.parts and not path.name.startswith("whose-code")
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        FOLDER.mkdir(parents=True, exist_ok=True)
        gen_inputs.build(root / "in", small=True)
        runner.check(root / "in", _made(root / "out" / "check"), "")
        runner.monitor(root / "in", _made(root / "out" / "mon"), "")
        runner.snap_make(root / "in", _made(root / "snaps"), "")
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False).stdout
        frozen = {
            "made_by": commit.strip(),
            "corpus": corpus_digest(root / "in"),
            "outputs": outputs(root / "out"),
        }
        snapshots = sorted((root / "snaps").glob("snap-dn-*.pickle"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        SNAPSHOT.write_bytes(snapshots[0].read_bytes())
    FIXTURE.write_bytes(gzip.compress(json.dumps(frozen, sort_keys=True).encode(), 9, mtime=0))
    print(f"{FIXTURE}: {len(frozen['outputs'])} outputs; {SNAPSHOT}")


def _made(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


if __name__ == "__main__":
    main()
