"""Reading a configuration-like input file (a licence, a key file, archived heads, a sanctions list, settings)
safely: only a regular file, and never more than a stated number of bytes.

Every option that names such a file reads it through here, so none of them can be pointed at a FIFO (the
open or the read would wait forever), a device such as /dev/zero (an unbounded read until memory runs out) or
a directory, and each says so in one line naming the file and the limit. A file that must hold a JSON
object is read by ``read_json_object``, which says what it holds instead when it holds something else.
Event streams are not read here: ``check --events`` may be a pipe or standard input by design (docs/cli.md)."""

from __future__ import annotations

import os
import stat as stat_mode
from pathlib import Path
from typing import Any

from sandboxwatch.rules_engine.json_bounds import loads_bounded

_KINDS = (
    (stat_mode.S_ISDIR, "a directory"),
    (stat_mode.S_ISFIFO, "a FIFO"),
    (stat_mode.S_ISCHR, "a character device"),
    (stat_mode.S_ISBLK, "a block device"),
    (stat_mode.S_ISSOCK, "a socket"),
)


class InputFileError(ValueError):
    """A file that cannot be used as an input. The message is one line, ``WHAT PATH REASON``
    ("--heads /tmp/p is not a regular file (a FIFO)"); ``reason`` alone is for callers that name
    the file themselves."""

    def __init__(self, what: str, path: str | Path, reason: str) -> None:
        super().__init__(f"{what} {path} {reason}")
        self.path = str(path)
        self.reason = reason


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def read_regular_file(path: str | Path, limit: int, what: str = "file") -> tuple[bytes, os.stat_result]:
    """The bytes of the regular file ``path`` (at most ``limit`` of them) and its status when read.

    Opened without blocking and checked on the open descriptor, so a path that is (or was swapped for) a FIFO
    or a device between a check and the read cannot hang or flood the caller; the read itself stops one
    byte past the limit, so a file growing while it is read is refused too. ``what`` names the input in the
    messages: the option ("--heads") or the kind of file ("address list")."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise InputFileError(what, path, f"cannot be read: {exc.strerror}") from None
    except ValueError:  # a NUL character in the path
        raise InputFileError(what, repr(str(path)), "cannot be read: not a file name") from None
    chunks: list[bytes] = []
    try:
        info = os.fstat(fd)
        if not stat_mode.S_ISREG(info.st_mode):
            raise InputFileError(what, path, f"is not a regular file ({_kind(info.st_mode)})")
        if info.st_size > limit:
            raise InputFileError(what, path, f"is larger than {limit:,} bytes")
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise InputFileError(what, path, f"cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise InputFileError(what, path, f"is larger than {limit:,} bytes")
    return data, info


def position(data: bytes, offset: int) -> tuple[int, int]:
    """Line and column (from 1, the column in bytes) of a byte offset, as a person finds it in an editor."""
    return data.count(b"\n", 0, offset) + 1, offset - (data.rfind(b"\n", 0, offset) + 1) + 1


def undecodable(data: bytes, exc: UnicodeDecodeError) -> str:
    """Where a file stops being UTF-8: line, column and byte offset."""
    line, column = position(data, exc.start)
    return f"line {line}, column {column} (byte offset {exc.start}: 0x{data[exc.start]:02x})"


def read_text_file(path: str | Path, limit: int, what: str = "file") -> str:
    """A regular file of at most ``limit`` bytes as UTF-8 text (a leading BOM dropped)."""
    data, _ = read_regular_file(path, limit, what)
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputFileError(what, path, f"is not UTF-8 text at {undecodable(data, exc)}") from None


# No JSON input file nests deeper than a few levels (heads: 2, client liabilities: 1); deeper text is refused
# before decoding, as every JSON from outside is (rules_engine/json_bounds.py).
JSON_FILE_DEPTH = 64
_JSON_KINDS = ((bool, "true or false"), (list, "a list"), (str, "a string"), (int | float, "a number"))


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return next(name for kind, name in _JSON_KINDS if isinstance(value, kind))


def read_json_object(path: str | Path, limit: int, what: str, expected: str) -> dict[str, Any]:
    """The JSON object a regular file of at most ``limit`` bytes holds. Text that is not JSON, nests too
    deep or repeats a key, and JSON that is not an object, are refused in one line saying what was
    ``expected`` ("--heads h.json is a list, not an object of ...")."""
    text = read_text_file(path, limit, what)
    try:
        value = loads_bounded(text, JSON_FILE_DEPTH)
    except ValueError as exc:
        raise InputFileError(what, path, f"is not JSON ({exc}); expected {expected}") from None
    if not isinstance(value, dict):
        raise InputFileError(what, path, f"is {_json_kind(value)}, not {expected}")
    return value
