"""API keys and the roles they carry, configured by the operator in a YAML file of key hashes.

Only SHA-256 hashes of the keys are stored, so the file can sit in a config repository; the keys
themselves are handed to their holders once (``sandboxwatch api new-key``).

Roles: a regulator sees every participant and may annotate findings; an auditor sees everything and
changes nothing; a participant sees only its own data and may pre-check its own events."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sandboxwatch.rules_engine.input_files import InputFileError, read_text_file
from sandboxwatch.rules_engine.licence import one_line
from sandboxwatch.store.history import Scope

# A key file holds a few dozen entries of under 200 bytes each; anything near a megabyte is not one.
MAX_KEY_FILE_BYTES = 1 << 20

ROLES = ("regulator", "auditor", "participant")


class KeyFileError(ValueError):
    pass


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    return "sbw_" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str
    participant: str | None = None

    @property
    def scope(self) -> Scope:
        return Scope(None if self.participant is None else frozenset({self.participant}))

    @property
    def may_annotate(self) -> bool:
        return self.role == "regulator"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "participant": self.participant}


class KeyRing:
    def __init__(self, entries: list[tuple[str, Principal]]) -> None:
        self._entries = entries

    def authenticate(self, secret: str) -> Principal | None:
        digest = hash_key(secret)
        match = None
        for stored, principal in self._entries:  # compare with every entry: time does not tell which one matched
            if hmac.compare_digest(stored, digest):
                match = principal
        return match

    def __len__(self) -> int:
        return len(self._entries)


def load_keys(path: Path) -> KeyRing:
    try:
        raw = yaml.safe_load(read_text_file(path, MAX_KEY_FILE_BYTES, "key file"))
    except InputFileError as exc:
        raise KeyFileError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise KeyFileError(f"{path}: not a valid key file: {one_line(str(exc))}") from None
    items = raw.get("keys") if isinstance(raw, dict) else None
    if not isinstance(items, list) or not items:
        raise KeyFileError(f"{path}: needs a non-empty 'keys:' list")
    entries: list[tuple[str, Principal]] = []
    names: set[str] = set()
    for index, item in enumerate(items):
        where = f"{path}: keys[{index}]"
        if not isinstance(item, dict):
            raise KeyFileError(f"{where}: must be a mapping")
        unknown = set(item) - {"name", "role", "participant", "sha256"}
        if unknown:
            raise KeyFileError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        name, role, participant, digest = (item.get(k) for k in ("name", "role", "participant", "sha256"))
        if not isinstance(name, str) or not name or name in names:
            raise KeyFileError(f"{where}: 'name' must be a unique non-empty string")
        if role not in ROLES:
            raise KeyFileError(f"{where}: 'role' must be one of {', '.join(ROLES)}")
        if (role == "participant") != isinstance(participant, str):
            raise KeyFileError(f"{where}: 'participant' is required for, and only for, the participant role")
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise KeyFileError(f"{where}: 'sha256' must be the 64-hex-digit SHA-256 of the key")
        names.add(name)
        entries.append((digest, Principal(name, role, participant if role == "participant" else None)))
    return KeyRing(entries)
