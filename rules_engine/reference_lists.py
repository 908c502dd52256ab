"""Reference data a rule names by file (a sanctions address list), loaded as a versioned, immutable input.

The engine stays pure: a rule's check never reads a file. The list is read when the licence is loaded, and
again only by ``refresh`` -- called by the monitor between batches, outside the engine -- when the file's
mtime or size changed and its digest with it. The new version is handed to the engine as new rule
parameters, so every finding names the list version (its publication date and digest) that judged it, and a
replay given the same versions in the same order reaches the same findings."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandboxwatch.rules_engine.engine import Engine

PUBLISHED = "# published:"


@dataclass(frozen=True, slots=True)
class AddressList:
    path: Path
    addresses: frozenset[str]  # lower case
    published: str | None  # the list's own date, from a "# published: YYYY-MM-DD" header line
    digest: str
    stamp: tuple[int, int]  # (mtime_ns, size) when read: a cheap test for "may have changed"

    @property
    def version(self) -> str:
        return f"{self.path.name} of {self.published}" if self.published else f"{self.path.name} ({self.digest[:12]})"


class ReferenceError(ValueError):
    pass


def load_address_list(path: Path) -> AddressList:
    try:
        stat = os.stat(path)
        data = path.read_bytes()
    except OSError as exc:
        raise ReferenceError(f"cannot read address list {path}: {exc.strerror}") from None
    text = data.decode("utf-8", errors="replace")
    published = None
    addresses = []
    for line in text.splitlines():
        if line.startswith(PUBLISHED):
            published = line.removeprefix(PUBLISHED).strip() or None
        entry = line.split("#", 1)[0].strip()
        if entry:
            addresses.append(entry.lower())
    return AddressList(
        path, frozenset(addresses), published, hashlib.sha256(data).hexdigest(), (stat.st_mtime_ns, stat.st_size)
    )


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
    fresh = load_address_list(current.path)
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
