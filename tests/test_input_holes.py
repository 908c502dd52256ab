"""Issue 13's remaining holes: each input a participant or an operator controls is bounded and refused with a
reason, never trusted or read without limits (docs/events.md, docs/licence.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandboxwatch.rules_engine.licence import MAX_BYTES, LicenceError, load_licence
from sandboxwatch.rules_engine.licence_params import ParamError, ParamReader
from sandboxwatch.rules_engine.money import parse_event_decimal
from sandboxwatch.store.clickhouse_store import Store
from tests.helpers import DA_NANG


def test_record_licence_reads_the_file_within_the_licence_bounds(store: Store, tmp_path: Path) -> None:
    """The store reads the licence again when it records it: a file swapped meanwhile for a far larger one
    (or a directory) is refused like load_licence refuses it, not read whole into memory and the store."""
    path = tmp_path / "licence.yaml"
    path.write_bytes(DA_NANG.read_bytes().replace(b"\n", b"\r\n"))
    licence = load_licence(path)
    digest = store.record_licence(licence, path)
    assert digest == store.record_licence(licence, path)
    [(body,)] = store.backend.rows(f"SELECT body FROM {store.db}.licence_versions")
    assert body == DA_NANG.read_text()  # newlines as \n, whatever the file's
    with path.open("wb") as sparse:
        sparse.truncate(MAX_BYTES + 1)
    with pytest.raises(LicenceError, match=f"larger than {MAX_BYTES:,} bytes"):
        store.record_licence(licence, path)
    path.unlink()
    path.mkdir()
    with pytest.raises(LicenceError, match=r"is not a regular file \(a directory\)"):
        store.record_licence(licence, path)
    assert store.backend.rows(f"SELECT count() FROM {store.db}.licence_versions") == [(1,)]


NUMBERS = ["12", "-3", "1.5", "2.5e8", "1E3", "2_0", "+5", " 5", "5 ", "1.", ".5", "0x10", "3:20:00", "inf", ".nan"]


@pytest.mark.parametrize("text", NUMBERS)
def test_a_licence_number_and_an_event_number_follow_one_grammar(text: str) -> None:
    """One check of the decimal grammar (money.parse_event_decimal) for events and licences: a text is a
    number in both or in neither, with the same value."""
    try:
        event_value = parse_event_decimal(text)
    except ValueError:
        event_value = None
    try:
        licence_value = ParamReader({"max": text}).decimal("max", positive=False)
    except ParamError as exc:
        assert event_value is None, exc
        return
    assert licence_value == event_value
