"""Screenshots of the console pages a browser test visits, kept after the run so a person can look at them.

They go to ``$SANDBOXWATCH_SCREENSHOTS`` if set, else ``tests/artifacts/screenshots/`` (git-ignored), one PNG
per call, named by the test's own label; a later run overwrites its own files and nothing else."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from tests.helpers import ROOT


def screenshot_dir() -> Path:
    folder = Path(os.environ.get("SANDBOXWATCH_SCREENSHOTS") or ROOT / "tests" / "artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_screen(driver: Any, name: str) -> Path:
    """Save what the browser shows now as ``<name>.png``; fails the test if the browser could not."""
    path = screenshot_dir() / (re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") + ".png")
    if not driver.save_screenshot(str(path)):
        raise AssertionError(f"the browser could not save a screenshot to {path}")
    return path
