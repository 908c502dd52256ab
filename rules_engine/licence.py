"""Loads and validates licence files (docs/licence.md, version 1).

A licence is rejected as a whole when any rule is wrong: a monitor running half a licence would report
compliance it never checked. Every problem names the rule, the field and the line."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from rules_engine.findings import SEVERITIES
from rules_engine.licence_params import ParamError, ParamReader
from rules_engine.rule_spec import LicenceHeader, RuleSpec
from rules_engine.rules import RULE_KINDS
from rules_engine.timestamps import parse_lateness, parse_timestamp

_COMMON = frozenset({"id", "kind", "severity", "clause"})
_HEADER_REQUIRED = ("id", "participant", "valid_from", "valid_until", "reporting_currency")
_HEADER_OPTIONAL = ("title", "legal_basis", "allowed_lateness")
_LINE = "__line__"


class LicenceError(Exception):
    """All the reasons a licence cannot be used, one per line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: licence rejected:\n" + "\n".join(f"  - {p}" for p in problems))
        self.source = source
        self.problems = problems


class _Loader(yaml.SafeLoader):
    """Safe YAML, with decimals kept exact and each mapping's line remembered for error messages."""


def _decimal(loader: _Loader, node: yaml.ScalarNode) -> Decimal:
    return Decimal(str(loader.construct_scalar(node)).replace("_", ""))


def _mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping[_LINE] = node.start_mark.line + 1
    return mapping


_Loader.add_constructor("tag:yaml.org,2002:float", _decimal)
_Loader.add_constructor("tag:yaml.org,2002:map", _mapping)


@dataclass(frozen=True, slots=True)
class Licence:
    header: LicenceHeader
    rules: tuple[RuleSpec, ...]
    source: str

    @property
    def id(self) -> str:
        return self.header.id

    @property
    def participant(self) -> str:
        return self.header.participant

    def fingerprint(self) -> str:
        """What the licence says, independent of file path, layout and object identity: two loads of the
        same terms give the same fingerprint, so stored state is reused only under unchanged terms."""
        return hashlib.sha256(repr(_canonical((self.header, self.rules))).encode()).hexdigest()

    def rule(self, rule_id: str) -> RuleSpec:
        return next(rule for rule in self.rules if rule.id == rule_id)


def _header(raw: Any, problems: list[str]) -> LicenceHeader | None:
    if not isinstance(raw, dict):
        problems.append("'licence' header is missing or not a mapping")
        return None
    values: dict[str, Any] = {}
    for name in _HEADER_REQUIRED + _HEADER_OPTIONAL:
        value = raw.get(name)
        if value is None:
            if name in _HEADER_REQUIRED:
                problems.append(f"licence header (line {raw.get(_LINE)}): field '{name}': missing")
            if name != "allowed_lateness":
                values[name] = ""
            continue
        if name == "allowed_lateness":
            try:
                values[name] = parse_lateness(value)
            except ValueError as exc:
                problems.append(f"licence header: field '{name}': {exc}")
            continue
        if name.startswith("valid_"):
            try:
                values[name] = parse_timestamp(value)
            except ValueError as exc:
                problems.append(f"licence header: field '{name}': {exc}")
            continue
        values[name] = str(value)
    if problems:
        return None
    if values["valid_from"] >= values["valid_until"]:
        problems.append("licence header: field 'valid_until': must be after valid_from")
        return None
    return LicenceHeader(**values)


def _rule(raw: Any, index: int, header: LicenceHeader, base_dir: Path, problems: list[str]) -> RuleSpec | None:
    if not isinstance(raw, dict):
        problems.append(f"rule #{index + 1}: must be a mapping with id, kind, severity and clause")
        return None
    line = raw.get(_LINE)
    rule_id = raw.get("id")
    kind_name = raw.get("kind")
    where = f"rule '{rule_id}' (line {line})" if rule_id else f"rule #{index + 1} (line {line})"
    ok = True
    if not isinstance(rule_id, str) or not rule_id:
        problems.append(f"{where}: field 'id': missing")
        ok = False
    kind = RULE_KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        known = ", ".join(sorted(RULE_KINDS))
        problems.append(f"{where}: field 'kind': unknown rule kind {kind_name!r} (known: {known})")
        ok = False
    severity = raw.get("severity")
    if severity not in SEVERITIES:
        problems.append(f"{where}: field 'severity': must be one of {', '.join(SEVERITIES)}, not {severity!r}")
        ok = False
    clause = raw.get("clause")
    if not isinstance(clause, str) or not clause.strip():
        problems.append(f"{where}: field 'clause': missing")
        ok = False
    if kind is None:
        return None
    reader = ParamReader(raw, base_dir)
    try:
        params = kind.parse(reader)
    except ParamError as exc:
        problems.append(f"{where}: field '{exc.field}': {exc.reason}")
        return None
    for unknown in reader.unused(_COMMON):
        problems.append(f"{where}: field '{unknown}': not a parameter of {kind.name}")
        ok = False
    if not ok:
        return None
    assert isinstance(rule_id, str) and isinstance(severity, str) and isinstance(clause, str)
    return RuleSpec(
        id=rule_id,
        kind=kind.name,
        severity=severity,
        clause=clause,
        params=params,
        licence_id=header.id,
        participant=header.participant,
        line=line,
    )


def parse_licence(text: str, source: str = "<licence>", base_dir: Path | None = None) -> Licence:
    try:
        document = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise LicenceError(source, [f"not valid YAML: {exc}"]) from None
    if not isinstance(document, dict):
        raise LicenceError(source, ["a licence must be a mapping with 'licence' and 'rules'"])
    problems: list[str] = []
    header = _header(document.get("licence"), problems)
    raw_rules = document.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        problems.append("'rules' is missing or empty")
        raw_rules = []
    if header is None:
        raise LicenceError(source, problems)
    rules: list[RuleSpec] = []
    seen: dict[str, int | None] = {}
    for index, raw in enumerate(raw_rules):
        rule = _rule(raw, index, header, base_dir or Path.cwd(), problems)
        if rule is None:
            continue
        if rule.id in seen:
            problems.append(f"rule '{rule.id}' (line {rule.line}): field 'id': duplicate of line {seen[rule.id]}")
            continue
        seen[rule.id] = rule.line
        rules.append(rule)
    if problems:
        raise LicenceError(source, problems)
    return Licence(header=header, rules=tuple(rules), source=source)


def load_licence(path: str | Path) -> Licence:
    location = Path(path)
    try:
        text = location.read_text(encoding="utf-8")
    except OSError as exc:
        raise LicenceError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    return parse_licence(text, str(path), location.parent)


def _canonical(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return (type(value).__name__, tuple((f.name, _canonical(getattr(value, f.name))) for f in fields
                                             if f.name not in {"line", "source"}))  # fmt: skip
    if isinstance(value, set | frozenset):
        return ("set", tuple(sorted(repr(_canonical(v)) for v in value)))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((repr(_canonical(k)), _canonical(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return tuple(_canonical(v) for v in value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value if isinstance(value, str | int | Decimal | bool | type(None)) else repr(value)
