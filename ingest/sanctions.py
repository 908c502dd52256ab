"""OFAC SDN digital-currency addresses -> the address file a ``blocked_addresses`` rule names.

Three published formats are read: the classic SDN.XML (``sdnEntry/idList/id`` with ``idType`` "Digital
Currency Address - XBT"), the SDN advanced XML (``Feature`` elements whose ``FeatureTypeID`` is declared as a
"Digital Currency Address - ..." feature type), and the legacy sdn.csv, where the addresses sit in the free-text
remarks ("Digital Currency Address - XBT 1A1z...; alt. Digital Currency Address - ETH 0x..."). The list's own
publication date goes into the written file, so every finding can say which list version judged it."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sandboxwatch.rules_engine.input_files import InputFileError, read_regular_file

# OFAC's largest file, SDN_ADVANCED.XML, is about 100 MB: room for it to double, and no room for /dev/zero.
MAX_SOURCE_BYTES = 256 << 20

DIGITAL_CURRENCY = "Digital Currency Address - "
_REMARK = re.compile(r"Digital Currency Address - ([A-Za-z0-9]+)\s+([^\s;]+)")


class SanctionsError(ValueError):
    """The file is not one of the known OFAC formats, or lacks what the import needs; says which and why."""


@dataclass(frozen=True, slots=True)
class ListedAddress:
    address: str
    currency: str
    party: str  # the SDN entry's uid / FixedRef


@dataclass(frozen=True, slots=True)
class SanctionsList:
    published: date
    format: str
    addresses: tuple[ListedAddress, ...]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _text(element: ET.Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _first(element: ET.Element, *path: str) -> ET.Element | None:
    current: ET.Element | None = element
    for name in path:
        if current is None:
            return None
        found = _children(current, name)
        current = found[0] if found else None
    return current


def _classic(root: ET.Element, source: Path) -> SanctionsList:
    published_text = _text(_first(root, "publshInformation", "Publish_Date"))
    try:
        published = datetime.strptime(published_text, "%m/%d/%Y").date()
    except ValueError:
        raise SanctionsError(f"{source}: publshInformation/Publish_Date {published_text!r} is not MM/DD/YYYY") from None
    found = []
    for entry in _children(root, "sdnEntry"):
        uid = _text(_first(entry, "uid"))
        for ident in _children(_first(entry, "idList") or ET.Element("idList"), "id"):
            kind = _text(_first(ident, "idType"))
            if kind.startswith(DIGITAL_CURRENCY):
                found.append(ListedAddress(_text(_first(ident, "idNumber")), kind.removeprefix(DIGITAL_CURRENCY), uid))
    return SanctionsList(published, "sdn.xml", tuple(found))


def _advanced(root: ET.Element, source: Path) -> SanctionsList:
    issue = _first(root, "DateOfIssue")
    try:
        assert issue is not None
        published = date(
            int(_text(_first(issue, "Year"))), int(_text(_first(issue, "Month"))), int(_text(_first(issue, "Day")))
        )
    except (AssertionError, ValueError):
        raise SanctionsError(f"{source}: DateOfIssue (Year, Month, Day) is missing or not a date") from None
    currencies = {
        feature_type.get("ID", ""): _text(feature_type).removeprefix(DIGITAL_CURRENCY)
        for feature_type in root.iter()
        if _local(feature_type.tag) == "FeatureType" and _text(feature_type).startswith(DIGITAL_CURRENCY)
    }
    found = []
    for party in root.iter():
        if _local(party.tag) != "DistinctParty":
            continue
        for feature in party.iter():
            if _local(feature.tag) != "Feature" or feature.get("FeatureTypeID") not in currencies:
                continue
            for detail in feature.iter():
                if _local(detail.tag) == "VersionDetail" and _text(detail):
                    currency = currencies[feature.get("FeatureTypeID", "")]
                    found.append(ListedAddress(_text(detail), currency, party.get("FixedRef", "")))
    return SanctionsList(published, "sdn_advanced.xml", tuple(found))


def _csv(text: str, source: Path, published: date | None) -> SanctionsList:
    if published is None:
        raise SanctionsError(f"{source}: sdn.csv carries no publication date; give it with --published YYYY-MM-DD")
    found = []
    for number, row in enumerate(csv.reader(io.StringIO(text.replace("\x1a", ""))), start=1):
        if not row:
            continue
        if len(row) != 12:
            raise SanctionsError(f"{source}:{number}: {len(row)} columns, sdn.csv has 12 (ent_num .. remarks)")
        for currency, address in _REMARK.findall(row[11]):
            found.append(ListedAddress(address.rstrip(".,"), currency, row[0].strip()))
    return SanctionsList(published, "sdn.csv", tuple(found))


def _source_bytes(source: Path) -> bytes:
    try:
        data, _ = read_regular_file(source, MAX_SOURCE_BYTES, "--source")
    except InputFileError as exc:
        raise SanctionsError(str(exc)) from None
    return data


def read_sanctions(source: Path, published: date | None = None) -> SanctionsList:
    data = _source_bytes(source)
    if data.lstrip().startswith(b"<"):
        try:
            root = ET.fromstring(data)
        except ET.ParseError as exc:
            raise SanctionsError(f"{source}: not well-formed XML: {exc}") from None
        tag = _local(root.tag)
        if tag == "sdnList":
            listed = _classic(root, source)
        elif tag == "Sanctions":
            listed = _advanced(root, source)
        else:
            raise SanctionsError(f"{source}: root element <{tag}> is neither <sdnList> nor <Sanctions>")
        if published is not None and published != listed.published:
            raise SanctionsError(f"{source}: the list says it was published {listed.published}, not {published}")
    else:
        listed = _csv(data.decode("utf-8", errors="replace"), source, published)
    if not listed.addresses:
        raise SanctionsError(f"{source}: no digital currency addresses found; refusing to write an empty list")
    return listed


def address_file_text(listed: SanctionsList, source: Path) -> str:
    """The ``blocked_addresses`` file: comment header with the list's date, then one address per line."""
    digest = hashlib.sha256(_source_bytes(source)).hexdigest()
    lines = [
        "# OFAC SDN digital currency addresses (written by `sandboxwatch sanctions import`; do not edit).",
        f"# published: {listed.published.isoformat()}",
        f"# source: {source.name} ({listed.format}, sha256 {digest})",
    ]
    seen: set[str] = set()
    for item in sorted(listed.addresses, key=lambda a: (a.currency, a.address.lower())):
        if item.address.lower() in seen:
            continue
        seen.add(item.address.lower())
        lines.append(f"{item.address}  # {item.currency}, SDN {item.party}")
    return "\n".join(lines) + "\n"


def write_address_file(listed: SanctionsList, source: Path, out: Path) -> int:
    """Replace ``out`` atomically (a monitor re-reading it never sees half a list); returns the count."""
    text = address_file_text(listed, source)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))
