"""Reference data a rule names by file (a sanctions address list), loaded as a versioned, immutable input.

The engine stays pure: a rule's check never reads a file. The list is read when the licence is loaded, and
again only by ``refresh`` -- called by the monitor between batches, outside the engine -- when the file's
mtime or size changed and its digest with it. The new version is handed to the engine as new rule
parameters, so every finding names the list version (its publication date and digest) that judged it, and a
replay given the same versions in the same order reaches the same findings."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.input_files import InputFileError, read_regular_file

if TYPE_CHECKING:
    from sandboxwatch.rules_engine.engine import Engine

PUBLISHED = "# published:"
# Bounds (docs/licence.md): OFAC's whole digital-currency list is well under a megabyte, so 64 MiB is room for
# any real list and no room for /dev/zero; only a regular file is read (a FIFO would block the load forever).
MAX_LIST_BYTES = 64 << 20
# An address is one token of letters and digits (hex, base58, bech32): a line of anything else means the file
# is not an address list (a mistyped path to /etc/passwd), and loading it would screen against nothing real.
_ADDRESS = re.compile(r"[A-Za-z0-9]{3,128}")
# An EVM address is 40 hex digits, written with or without "0x"/"0X" and in any case (EIP-55 mixes cases):
# one key for every spelling, on both sides of a comparison, so a list written "dead...beef" still matches an
# event's "0xDEAD...BEEF".
_EVM = re.compile(r"(?:0x)?([0-9a-f]{40})")


@dataclass(frozen=True, slots=True)
class AddressList:
    path: Path
    addresses: frozenset[str]  # address_key of each entry
    published: str | None  # the list's own date, from a "# published: YYYY-MM-DD" header line
    digest: str
    stamp: tuple[int, int]  # (mtime_ns, size) when read: a cheap test for "may have changed"

    @property
    def version(self) -> str:
        return f"{self.path.name} of {self.published}" if self.published else f"{self.path.name} ({self.digest[:12]})"


class ReferenceError(ValueError):
    pass


def load_address_list(path: Path) -> AddressList:
    data, stamp = _read_bounded(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = data.count(b"\n", 0, exc.start) + 1
        raise ReferenceError(f"address list {path}, line {bad_line}: not UTF-8 text: not an address list") from None
    published = None
    addresses = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.startswith(PUBLISHED):
            published = line.removeprefix(PUBLISHED).strip()[:40] or None
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if not is_address(entry):
            # The file's content is never quoted: a path mistyped or planted (/proc/self/environ) must not
            # leak its secrets into a rejection that is logged and shown; the line number finds it.
            raise ReferenceError(
                f"address list {path}, line {number}: not an address (3 to 128 letters and digits, "
                "one per line, '#' starts a comment): not an address list"
            )
        addresses.append(address_key(entry))
    return AddressList(path, frozenset(addresses), published, hashlib.sha256(data).hexdigest(), stamp)


def is_address(text: str) -> bool:
    return _ADDRESS.fullmatch(text) is not None


def address_key(address: str) -> str:
    """The form an address is compared in: lower case, and an EVM address always with its "0x".

    Remembered: the rules ask it of every on-chain event's addresses (registered_wallet, blocked_addresses),
    which repeat (a customer's wallets, the custody addresses), and a regular expression per event cost more
    than the rules' own work. The memo is a pure function's and bounded: cleared when full."""
    key = _KEYS.get(address)
    if key is None:
        lowered = address.lower()
        evm = _EVM.fullmatch(lowered)
        key = lowered if evm is None else "0x" + evm.group(1)
        if len(_KEYS) >= _KEYS_KEPT:
            _KEYS.clear()
        _KEYS[address] = key
    return key


_KEYS: dict[str, str] = {}
_KEYS_KEPT = 100_000


def _read_bounded(path: Path) -> tuple[bytes, tuple[int, int]]:
    """The bytes of a regular file of at most MAX_LIST_BYTES (rules_engine/input_files.py: never a FIFO or a
    device, never more than the bound)."""
    try:
        data, info = read_regular_file(path, MAX_LIST_BYTES, "address list")
    except InputFileError as exc:
        raise ReferenceError(str(exc)) from None
    return data, (info.st_mtime_ns, info.st_size)


def changed(current: AddressList) -> AddressList | None:
    """The new version of a list whose file changed since it was read, or None. An unreadable or empty new
    file keeps the current version (and raises for the caller to log): a list must never silently vanish."""
    try:
        stat = os.stat(current.path)
    except OSError as exc:
        raise ReferenceError(
            f"cannot read address list {current.path}: {exc.strerror}; keeping {current.version}"
        ) from None
    if (stat.st_mtime_ns, stat.st_size) == current.stamp:
        return None
    try:
        fresh = load_address_list(current.path)
    except ReferenceError as exc:
        raise ReferenceError(f"{exc}; keeping {current.version}") from None
    if fresh.digest == current.digest:
        return None
    if not fresh.addresses:
        raise ReferenceError(f"{current.path} is now empty; keeping {current.version}")
    return fresh


def refresh(engine: Engine) -> list[str]:
    """Swap in new versions of the engine's file-backed lists; returns a line per list that changed."""
    swapped = []
    for rule in engine.licence.rules:
        lists = getattr(rule.params, "lists", None)
        if not lists:
            continue
        new_lists = []
        for current in lists:
            fresh = changed(current)
            new_lists.append(fresh or current)
            if fresh is not None:
                swapped.append(f"{rule.id}: {current.version} -> {fresh.version}")
        if tuple(new_lists) != tuple(lists):
            engine.replace_rule(replace(rule, params=replace(rule.params, lists=tuple(new_lists))))
    return swapped
