"""A connector's position, kept in a small JSON file replaced atomically.

The connectors publish (and flush) first and checkpoint second: a crash in between re-publishes the same
stable event ids, which the monitor counts once. Writing to a temporary file, fsyncing it and renaming it
over the old one means a crash never leaves a half-written checkpoint that would skip or replay everything."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sandboxwatch.rules_engine.input_files import InputFileError, read_json_object

# A connector's checkpoint is a few positions per stream; 64 MiB is far past any real one.
MAX_CHECKPOINT_BYTES = 64 << 20


class CheckpointError(Exception):
    """The checkpoint file exists but cannot be used; starting over silently would re-read or skip history."""


_EXPECTED = "the JSON object ingest writes; fix or remove it"


class Checkpoint:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            return read_json_object(self.path, MAX_CHECKPOINT_BYTES, "checkpoint", _EXPECTED)
        except InputFileError as exc:
            raise CheckpointError(str(exc)) from None

    def save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(data, out, sort_keys=True, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
