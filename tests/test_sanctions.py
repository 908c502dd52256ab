"""OFAC SDN digital-currency addresses into the blocked_addresses list; a new list taken without a restart."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from sandboxwatch.cli import main
from sandboxwatch.rules_engine.event_parser import event_from_dict
from sandboxwatch.rules_engine.licence import parse_licence
from sandboxwatch.rules_engine.reference_lists import refresh
from sandboxwatch.store.clickhouse_store import Store
from tests.helpers import HEADER, onchain

FIXTURES = Path(__file__).parent / "fixtures" / "sanctions"
LISTED = {
    "12qtd5bfwrsdnsazy76uve1xycgntojh9h",
    "0x098b716b8aaf21512996dc57eb0615e2383e2f96",
    "tn4j2q5hk9a3hluh2hin6mdrb1cmuyd1zs",
    "0x7f367cc41522ce07553e823bf3be79a889debe1b",
}


@pytest.mark.parametrize(
    ("name", "extra"), [("sdn.xml", []), ("sdn_advanced.xml", []), ("sdn.csv", ["--published", "2025-10-21"])]
)
def test_each_published_format_yields_the_same_list_with_its_date(
    name: str, extra: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ofac.txt"
    assert main(["sanctions", "import", "--source", str(FIXTURES / name), "--out", str(out), *extra]) == 0
    text = out.read_text()
    assert "# published: 2025-10-21\n" in text
    entries = {line.split("#", 1)[0].strip().lower() for line in text.splitlines() if not line.startswith("#")}
    assert entries == LISTED  # the passport number and the entry without addresses are not listed
    assert "4 addresses" in capsys.readouterr().err


def test_unusable_sources_exit_two_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ofac.txt"
    assert main(["sanctions", "import", "--source", str(FIXTURES / "sdn.csv"), "--out", str(out)]) == 2
    assert "--published" in capsys.readouterr().err
    empty = tmp_path / "empty.xml"
    empty.write_text(
        "<sdnList><publshInformation><Publish_Date>10/21/2025</Publish_Date></publshInformation></sdnList>"
    )
    assert main(["sanctions", "import", "--source", str(empty), "--out", str(out)]) == 2
    assert "refusing to write an empty list" in capsys.readouterr().err
    other = tmp_path / "other.xml"
    other.write_text("<html/>")
    assert main(["sanctions", "import", "--source", str(other), "--out", str(out)]) == 2
    assert not out.exists()


def test_findings_name_the_list_version_and_a_new_list_is_taken_without_restart(tmp_path: Path) -> None:
    from sandboxwatch.rules_engine.engine import Engine

    listed = tmp_path / "ofac.txt"
    listed.write_text("# published: 2025-10-01\n0x1111111111111111111111111111111111111111\n")
    licence = parse_licence(
        HEADER + "  - {id: ofac, kind: blocked_addresses, severity: critical, clause: sdn, file: ofac.txt}\n",
        base_dir=tmp_path,
    )
    engine = Engine(licence)
    tron = "TN4J2Q5Hk9a3HLuH2hiN6mDrB1CmUyd1Zs"
    first = event_from_dict(onchain(address=tron, chain="tron", event_id="w1"))
    # Each event is judged before the list changes (flush: its reorder buffer would hold it otherwise).
    assert engine.process(first) + engine.flush() == []
    assert refresh(engine) == []  # unchanged file: nothing swapped
    assert main(["sanctions", "import", "--source", str(FIXTURES / "sdn.xml"), "--out", str(listed)]) == 0
    os.utime(listed, ns=(1, 2))  # even within one mtime tick, the size and digest tell
    assert refresh(engine) == ["ofac: ofac.txt of 2025-10-01 -> ofac.txt of 2025-10-21"]
    found = engine.process(event_from_dict(onchain(address=tron, chain="tron", event_id="w2"))) + engine.flush()
    assert [f.evidence for f in found] == [("w2",)]
    assert "listed in ofac.txt of 2025-10-21" in found[0].message
    # A broken re-import never empties the screening: the last good version stays.
    listed.write_text("")
    with pytest.raises(ValueError, match=r"now empty; keeping ofac\.txt of 2025-10-21"):
        refresh(engine)
    again = engine.process(event_from_dict(onchain(address=tron, chain="tron", event_id="w3"))) + engine.flush()
    assert [f.evidence for f in again] == [("w3",)]


def test_the_monitor_takes_a_new_list_between_batches(tmp_path: Path, store: Store) -> None:
    from sandboxwatch.streams.inbound import InboundMessage
    from sandboxwatch.streams.monitor import Monitor

    listed = tmp_path / "ofac.txt"
    listed.write_text("# published: 2025-10-01\n0x1111111111111111111111111111111111111111\n")
    licence = parse_licence(
        HEADER + "  - {id: ofac, kind: blocked_addresses, severity: critical, clause: sdn, file: ofac.txt}\n",
        base_dir=tmp_path,
    )
    monitor = Monitor([licence], store)
    tron = "TN4J2Q5Hk9a3HLuH2hiN6mDrB1CmUyd1Zs"

    def batch(event_id: str, offset: int) -> list[str]:
        row = json.dumps(onchain(address=tron, chain="tron", event_id=event_id))
        message = InboundMessage("events", 0, offset, licence.participant.encode(), row.encode())
        judged = monitor.process_batch([message]).findings + monitor.flush().findings  # end of input
        return [f.rule for f in judged]

    assert batch("w1", 0) == []
    shutil.copy(FIXTURES / "sdn.xml", tmp_path / "sdn.xml")
    assert main(["sanctions", "import", "--source", str(tmp_path / "sdn.xml"), "--out", str(listed)]) == 0
    assert batch("w2", 1) == ["ofac"]
