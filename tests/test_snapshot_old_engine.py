"""An engine snapshot pickled by the code before the price book's bands and the engine's per-event savings
(main at aa6eaf0, tests/fixtures/old_snapshot/make_fixture.py) restores through the workers' own path
(streams.engine_snapshots.restore) and then judges the rest of the stream exactly as that code did: the same
findings, ids, fields and order. Were a layout change ever to make such a snapshot unloadable, ``restore``
would have to answer None (the worker rebuilds from the store and counts it), never raise."""

from __future__ import annotations

import gc
import hashlib
import pickle
import types
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from sandboxwatch.rules_engine.engine import Engine
from sandboxwatch.rules_engine.event_reader import read_jsonl
from sandboxwatch.rules_engine.events import Event
from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.rules_engine.timestamps import shared_zone
from sandboxwatch.streams.engine_snapshots import Manifest, chunk_key, restore, split
from tests.helpers import DA_NANG

FIXTURE = Path(__file__).parent / "fixtures" / "old_snapshot" / "engine-aa6eaf0.pickle"


def _fixture() -> dict[str, object]:
    fixture = pickle.loads(zlib.decompress(FIXTURE.read_bytes()))
    assert isinstance(fixture, dict)
    return fixture


def _restored(blob: bytes) -> Engine | None:
    parts = split(blob)
    manifest = Manifest("alphatrue-basal-pay", 4, len(parts), hashlib.sha256(blob).hexdigest(), "-", {0: 1})
    stored = {chunk_key(manifest.participant, 4, index): part for index, part in enumerate(parts)}
    return restore(manifest, stored.get)


def _datetimes(root: object) -> Iterator[datetime]:
    """Every datetime reachable from the object (not through classes, modules or functions)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, (type, types.ModuleType, types.FunctionType, str, bytes)):
            continue
        seen.add(id(item))
        if isinstance(item, datetime):
            yield item
        else:
            stack.extend(gc.get_referents(item))


def test_an_old_snapshot_restores_and_judges_the_rest_as_the_old_code_did() -> None:
    fixture = _fixture()
    lines, cut, expected = fixture["lines"], fixture["cut"], fixture["findings_after"]
    assert isinstance(lines, list) and isinstance(cut, int) and isinstance(expected, list)
    events = [item for _, item in read_jsonl(lines, "fixture") if isinstance(item, Event)]
    assert len(events) == len(lines)
    snapshot = fixture["snapshot"]
    assert isinstance(snapshot, bytes)
    engine = _restored(snapshot)
    assert engine is not None, "the old snapshot was refused: it restores, so the rebuild path must not be taken"
    assert engine.buffered > 0 and engine.facts.prices.latest("USDT", "VND", events[cut].ts) is not None
    # The times compared with every event share the parser's tzinfo object again (the fast comparison).
    zone = events[cut].ts.tzinfo
    assert engine.header.valid_from.tzinfo is zone and engine.header.valid_until.tzinfo is zone
    assert engine._term_start.tzinfo is zone and engine.clock is not None and engine.clock.tzinfo is zone
    # Every stored time, not only the engine's own (rolling windows, deadlines, prices): the unpickler gives
    # them the parser's zones (rules_engine/zone_sharing_pickle.py).
    stored = [t for t in _datetimes(engine) if t.tzinfo is not None]
    assert len(stored) > 100 and all(t.tzinfo is shared_zone(t.utcoffset() or timedelta(0)) for t in stored)
    after = [f for event in events[cut:] for f in engine.process(event)] + engine.flush()
    assert [f.to_dict() for f in after] == expected
    assert {f["kind"] for f in expected} >= {"price_refused", "late_event", "structuring"}
    # And the same as an engine of this code that never stopped.
    fresh = Engine(load_licence(DA_NANG))
    for event in events[:cut]:
        fresh.process(event)
    assert [f.to_dict() for event in events[cut:] for f in fresh.process(event)] + [
        f.to_dict() for f in fresh.flush()
    ] == expected


def test_an_unloadable_snapshot_is_refused_not_raised() -> None:
    """The counted rebuild path's entry: a snapshot naming a class that no longer exists answers None."""
    snapshot = _fixture()["snapshot"]
    assert isinstance(snapshot, bytes)
    broken = pickle.loads(zlib.decompress(snapshot))
    assert isinstance(broken, Engine)
    damaged = zlib.decompress(snapshot).replace(b"sandboxwatch.rules_engine.facts", b"sandboxwatch.rules_engine.gone!")
    assert _restored(zlib.compress(damaged)) is None


def test_a_snapshot_of_this_code_with_bands_in_use_restores_to_the_same_findings() -> None:
    """Cut anywhere in the stream (the price bands built by then are not pickled, rebuilt on first use)."""
    fixture = _fixture()
    lines = fixture["lines"]
    assert isinstance(lines, list)
    events = [item for _, item in read_jsonl(lines, "fixture") if isinstance(item, Event)]
    licence = load_licence(DA_NANG)
    whole = Engine(licence)
    expected = [f.to_dict() for event in events for f in whole.process(event)] + [f.to_dict() for f in whole.flush()]
    assert sum(f["kind"] == "price_refused" for f in expected) >= 10
    for cut in (len(events) // 3, len(events) // 2 + 7, len(events) * 4 // 5):
        engine = Engine(licence)
        found = [f.to_dict() for event in events[:cut] for f in engine.process(event)]
        assert engine.facts.prices._bands, "the bands are in use before the cut"
        restored = _restored(zlib.compress(pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL)))
        assert restored is not None and not restored.facts.prices._bands
        found += [f.to_dict() for event in events[cut:] for f in restored.process(event)]
        assert found + [f.to_dict() for f in restored.flush()] == expected
