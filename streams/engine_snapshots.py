"""Engine state as bytes for the faust state table, split to fit Kafka's message size.

A snapshot is written as chunks under a new generation, then a manifest naming that generation and the
last source offset it covers per partition; only then are the previous generation's chunks deleted. A
crash part way leaves the old manifest pointing at intact old chunks, so a restore never mixes two."""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sandboxwatch.rules_engine import zone_sharing_pickle
from sandboxwatch.rules_engine.engine import Engine

log = logging.getLogger(__name__)

# Below the 1 MB default of Kafka's message.max.bytes and of aiokafka's max_request_size, with headroom.
CHUNK_BYTES = 900_000


@dataclass(frozen=True, slots=True)
class Manifest:
    participant: str
    generation: int
    chunks: int
    sha256: str
    licence_sha256: str
    offsets: dict[int, int]

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "generation": self.generation,
                "chunks": self.chunks,
                "sha256": self.sha256,
                "licence_sha256": self.licence_sha256,
                "offsets": {str(p): o for p, o in self.offsets.items()},
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_bytes(cls, participant: str, data: bytes) -> Manifest:
        obj = json.loads(data)
        return cls(
            participant,
            int(obj["generation"]),
            int(obj["chunks"]),
            str(obj["sha256"]),
            str(obj["licence_sha256"]),
            {int(p): int(o) for p, o in obj["offsets"].items()},
        )


def manifest_key(participant: str) -> bytes:
    return f"{participant}#manifest".encode()


def chunk_key(participant: str, generation: int, index: int) -> bytes:
    return f"{participant}#{generation}#{index}".encode()


def licence_digest(engine: Engine) -> str:
    return engine.licence.fingerprint()


def dump(engine: Engine) -> bytes:
    return zlib.compress(pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL), 3)


def split(blob: bytes) -> list[bytes]:
    return [blob[i : i + CHUNK_BYTES] for i in range(0, len(blob), CHUNK_BYTES)] or [b""]


def restore(manifest: Manifest, get: Callable[[bytes], bytes | None]) -> Engine | None:
    """The engine the manifest describes, or None when a chunk is missing or does not match its digest."""
    parts = []
    for index in range(manifest.chunks):
        part = get(chunk_key(manifest.participant, manifest.generation, index))
        if part is None:
            return None
        parts.append(part)
    blob = b"".join(parts)
    if hashlib.sha256(blob).hexdigest() != manifest.sha256:
        return None
    try:
        engine = zone_sharing_pickle.loads(zlib.decompress(blob))
    except Exception:  # a snapshot of an older engine layout: the caller rebuilds from the store instead
        log.warning(
            "snapshot of %s generation %d cannot be loaded", manifest.participant, manifest.generation, exc_info=True
        )
        return None
    return engine if isinstance(engine, Engine) else None


def plan(
    engine: Engine | None,
    participant: str,
    previous: Manifest | None,
    offsets: Mapping[int, int],
    *,
    blob: bytes | None = None,
    licence: str | None = None,
) -> tuple[Manifest, list[tuple[bytes, bytes | None]]]:
    """The writes (key, value; None deletes) that replace ``previous`` with a snapshot of ``engine``, or of
    the engine ``blob`` was dumped from (streams.snapshot_fork) under the licence fingerprint ``licence``."""
    if blob is None or licence is None:
        assert engine is not None, "an engine, or its blob and licence fingerprint"
        blob, licence = dump(engine), licence_digest(engine)
    parts = split(blob)
    generation = (previous.generation + 1) if previous else 1
    merged = dict(previous.offsets) if previous else {}
    merged.update(offsets)
    manifest = Manifest(participant, generation, len(parts), hashlib.sha256(blob).hexdigest(), licence, merged)
    writes: list[tuple[bytes, bytes | None]] = [
        (chunk_key(participant, generation, i), part) for i, part in enumerate(parts)
    ]
    writes.append((manifest_key(participant), manifest.to_bytes()))
    if previous:
        writes += [(chunk_key(participant, previous.generation, i), None) for i in range(previous.chunks)]
    return manifest, writes
