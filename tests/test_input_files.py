"""The one reader of files that must hold a JSON object (archived heads, client liabilities, an ingest
checkpoint): what it accepts, and the one line it refuses anything else with."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandboxwatch.ingest.checkpoint import Checkpoint, CheckpointError
from sandboxwatch.ingest.settings import SettingsError, read_liabilities
from sandboxwatch.rules_engine.input_files import JSON_FILE_DEPTH, InputFileError, read_json_object

EXPECTED = "an object of asset: amount"
NOT_JSON = "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
REPEATED = "the key 'a' appears more than once in one object: which of its values is meant is ambiguous"


def _file(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "input.json"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_an_object_is_read(tmp_path: Path) -> None:
    path = _file(tmp_path, '\ufeff{"USDT": "1000.25", "x": {"y": [1, 2]}}')
    assert read_json_object(path, 1000, "--x", EXPECTED) == {"USDT": "1000.25", "x": {"y": [1, 2]}}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[1, 2, 3]", f"is a list, not {EXPECTED}"),
        ('"USDT"', f"is a string, not {EXPECTED}"),
        ("12.5", f"is a number, not {EXPECTED}"),
        ("true", f"is true or false, not {EXPECTED}"),
        ("null", f"is null, not {EXPECTED}"),
        ("{not json", f"is not JSON ({NOT_JSON}); expected {EXPECTED}"),
        ('{"a": 1, "a": 2}', f"is not JSON (a: {REPEATED}); expected {EXPECTED}"),
        ("[" * 100_000, f"is not JSON (JSON nested deeper than {JSON_FILE_DEPTH} levels); expected {EXPECTED}"),
        (b'{"a": "\xff"}', "is not UTF-8 text at line 1, column 8 (byte offset 7: 0xff)"),
    ],
)
def test_anything_but_an_object_is_one_line_naming_the_file_and_what_was_expected(
    tmp_path: Path, text: str | bytes, reason: str
) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(InputFileError) as refused:
        read_json_object(path, 1 << 20, "--x", EXPECTED)
    assert refused.value.reason == reason
    assert str(refused.value) == f"--x {path} {reason}"


def test_size_and_kind_are_checked_before_decoding(tmp_path: Path) -> None:
    path = _file(tmp_path, '{"a": "' + "x" * 100 + '"}')
    with pytest.raises(InputFileError, match=f"^--x {path} is larger than 50 bytes$"):
        read_json_object(path, 50, "--x", EXPECTED)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputFileError, match=r"is not a regular file \(a FIFO\)$"):
        read_json_object(fifo, 50, "--x", EXPECTED)


def test_client_liabilities_and_checkpoints_read_through_it(tmp_path: Path) -> None:
    path = _file(tmp_path, "[]")
    with pytest.raises(SettingsError) as liabilities:
        read_liabilities(path)
    assert str(liabilities.value) == f"client liabilities file {path} is a list, not a JSON object of asset: amount"
    with pytest.raises(CheckpointError) as checkpoint:
        Checkpoint(path).load()
    assert str(checkpoint.value) == f"checkpoint {path} is a list, not the JSON object ingest writes; fix or remove it"
    Checkpoint(path).save({"offsets": {"a": 3}})
    assert Checkpoint(path).load() == {"offsets": {"a": 3}}
    assert Checkpoint(tmp_path / "absent.json").load() == {}
