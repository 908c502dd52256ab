"""Loads and validates licence files (docs/licence.md, version 1).

A licence is rejected as a whole when any rule is wrong: a monitor running half a licence would report
compliance it never checked. Every problem names the rule, the field and the line."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from sandboxwatch.rules_engine.event_parser import hidden_character, identifier_problem, unicode_problem
from sandboxwatch.rules_engine.findings import SEVERITIES
from sandboxwatch.rules_engine.input_files import InputFileError, read_regular_file, undecodable
from sandboxwatch.rules_engine.input_files import position as byte_position
from sandboxwatch.rules_engine.licence_params import ParamError, ParamReader, name_problem, show
from sandboxwatch.rules_engine.rule_spec import LicenceHeader, RuleSpec
from sandboxwatch.rules_engine.rules import RULE_KINDS
from sandboxwatch.rules_engine.timestamps import parse_lateness, parse_timestamp

_COMMON = frozenset({"id", "kind", "severity", "clause"})
_HEADER_REQUIRED = ("id", "participant", "valid_from", "valid_until", "reporting_currency")
_HEADER_OPTIONAL = ("title", "legal_basis", "allowed_lateness")
_LINE = "__line__"
# Bounds (docs/licence.md): a real licence is a few kilobytes, a few levels deep, with no YAML anchors or
# aliases; refusing those before anything is built keeps a crafted file from taking minutes or gigabytes.
MAX_BYTES = 1 << 20
MAX_DEPTH = 16
_MAX_INT_DIGITS = 30
# A rule id is a short name (it is in every finding, metric label and URL): letters, digits, '_' and '-'.
RULE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
CURRENCY = re.compile(r"[A-Z]{3}")  # ISO 4217
HEADER_TEXT_MAX = 200  # id, participant: names, also used as API path ids (at most 200 characters there)


class LicenceError(Exception):
    """All the reasons a licence cannot be used, one per line. One reason is one line: ``FILE: licence
    rejected: REASON``, or ``FILE:LINE:COLUMN: REASON`` when it has a position in the file (``at``: line,
    column and the reason without them, for a YAML syntax error or bytes that are not UTF-8), as compilers and
    editors print it. ``problems`` always name the position in words."""

    def __init__(self, source: str, problems: list[str], at: tuple[int, int, str] | None = None) -> None:
        if at is not None and len(problems) == 1:
            text = f"{source}:{at[0]}:{at[1]}: {at[2]}"
        elif len(problems) == 1:
            text = f"{source}: licence rejected: {problems[0]}"
        else:
            text = f"{source}: licence rejected:\n" + "\n".join(f"  - {p}" for p in problems)
        super().__init__(text)
        self.source = source
        self.problems = problems
        self.at = at


class DuplicateKey(yaml.YAMLError):
    """A key given twice in one mapping. YAML loaders keep the last value without a word, so a second
    ``rules:`` would replace every rule and a repeated ``max`` would raise a limit: refused instead."""

    def __init__(self, key: object, line: int, first: int, within: str) -> None:
        shown = str(key) if len(str(key)) <= 60 else str(key)[:57] + "..."
        super().__init__(
            f"{within}: field '{shown}': given twice (line {first} and line {line}); a licence must say "
            "each thing once (YAML would silently keep only the last value)"
        )


class _Loader(yaml.SafeLoader):
    """Safe YAML, with decimals kept exact and each mapping's line remembered for error messages.

    Safe by construction, not by after-the-fact checks: an anchor or alias is refused when the parser
    meets it, before any node is composed (an alias bomb fails in microseconds instead of expanding to
    gigabytes), and nesting is capped while composing (no recursion past MAX_DEPTH)."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "YAML anchors and aliases (&name, *name) are not allowed in a licence", event.start_mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# YAML 1.1 reads far more than decimals as numbers: `3:20:00` is 12000 (base 60), `1_0` is 10, `0x0BEBC200`
# and `0o17` are hex and octal, `.inf` and `.nan` are floats. A limit must mean what it shows, so only plain
# decimals are numbers; anything else stays text, which every number parameter refuses naming the rule and
# the field.
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _decimal(loader: _Loader, node: yaml.ScalarNode) -> Decimal | str:
    """A YAML float as an exact Decimal, when written as a plain decimal (see _PLAIN_NUMBER)."""
    text = str(loader.construct_scalar(node))
    if len(text) > _MAX_INT_DIGITS + 20 or not _PLAIN_NUMBER.fullmatch(text):
        return text[:40] + "..." if len(text) > 40 else text
    value = Decimal(text)
    return value if value.is_finite() else text


def _integer(loader: _Loader, node: yaml.ScalarNode) -> int | str:
    """A YAML int written as plain digits; one too long to be any bound stays text (int() itself raises past
    4,300 digits), and so do the other YAML 1.1 forms (see _PLAIN_NUMBER)."""
    text = str(loader.construct_scalar(node))
    if len(text) > _MAX_INT_DIGITS:
        return text[:40] + "..."
    if not _PLAIN_NUMBER.fullmatch(text) or "." in text:
        return text
    return int(text)


def _timestamp(loader: _Loader, node: yaml.ScalarNode) -> str:
    """Timestamps stay text for parse_timestamp, which names the field and refuses 30 February, an
    instant without an offset, or a year outside the bounds (YAML's own constructor raises on those)."""
    return str(loader.construct_scalar(node))


def _within(node: yaml.MappingNode) -> str:
    """The mapping named as in every other rejection: a rule by its id, the header, the top level."""
    scalars = {k.value: v.value for k, v in node.value if isinstance(k, yaml.ScalarNode)}
    line = node.start_mark.line + 1
    if "kind" in scalars and isinstance(scalars.get("id"), str):
        name = scalars["id"]
        return f"rule '{name if len(name) <= 64 else name[:61] + '...'}' (line {line})"
    if "rules" in scalars or "licence" in scalars:
        return "the licence file"
    if "participant" in scalars or "valid_from" in scalars:
        return f"licence header (line {line})"
    return f"the mapping on line {line}"


def _mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            if key in first_line:
                raise DuplicateKey(key, line, first_line[key], _within(node))
            first_line[key] = line
        except TypeError:  # an unhashable key: construct_mapping refuses it with its own message
            continue
    mapping = loader.construct_mapping(node, deep=True)
    mapping[_LINE] = node.start_mark.line + 1
    return mapping


_Loader.add_constructor("tag:yaml.org,2002:float", _decimal)
_Loader.add_constructor("tag:yaml.org,2002:int", _integer)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)
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
            elif name in raw:  # written empty: its default may check less than the author meant
                problems.append(f"licence header: field '{name}': {_NULL}")
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
        if not isinstance(value, str | int) or isinstance(value, bool):
            problems.append(f"licence header: field '{name}': must be text, not {type(value).__name__}")
            continue
        text = str(value)
        if name == "reporting_currency" and CURRENCY.fullmatch(text) is None:
            problems.append(
                f"licence header: field '{name}': must be a 3-letter ISO 4217 code such as VND, not {show(value)}"
            )
            continue
        if name in ("id", "participant") and not (0 < len(text.strip()) == len(text) <= HEADER_TEXT_MAX):
            problems.append(
                f"licence header: field '{name}': must be a name of 1 to {HEADER_TEXT_MAX} characters without "
                f"surrounding spaces, not {show(value)}"
            )
            continue
        problem = name_problem(text) if name == "participant" else None
        if problem:  # matched exactly against events' participant, which refuses these characters
            problems.append(f"licence header: field '{name}': {show(value)} {problem}")
            continue
        values[name] = text
    for name in ("retraction_sources", "reference_prices"):
        if name in raw and raw[name] is None:
            problems.append(f"licence header: field '{name}': {_NULL}")
    sources = raw.get("retraction_sources")
    if sources is not None:
        problem = _sources_problem(sources)
        if problem:
            problems.append(f"licence header: field 'retraction_sources': {problem}")
        else:
            values["retraction_sources"] = tuple(sources)
    prices = raw.get("reference_prices")
    if prices is not None:
        values.update(_reference_prices(prices, problems))
    unknown = sorted(str(k) for k in raw if k not in _HEADER_FIELDS)
    for name in unknown:
        problems.append(f"licence header: field '{name[:60]}': not a header field")
    if problems:
        return None
    if values["valid_from"] >= values["valid_until"]:
        problems.append("licence header: field 'valid_until': must be after valid_from")
        return None
    return LicenceHeader(**values)


def _sources_problem(sources: Any) -> str | None:
    if not isinstance(sources, list):
        return f"must be a list of chain names, not {show(sources)}"
    for position, item in enumerate(sources, start=1):
        if not isinstance(item, str) or not item.strip():
            return f"item {position} ({show(item)}) is not a chain name"
        if len(item) > HEADER_TEXT_MAX:
            return f"item {position} ({show(item)}) is longer than {HEADER_TEXT_MAX} characters"
        problem = name_problem(item)
        if problem:
            return f"item {position} ({show(item)}) {problem}"
    return None


_NULL = "given without a value (null): write the value, or leave the field out"
_HEADER_FIELDS = frozenset({*_HEADER_REQUIRED, *_HEADER_OPTIONAL, "retraction_sources", "reference_prices", _LINE})
_PRICES = "licence header: field 'reference_prices"


def _reference_prices(raw: Any, problems: list[str]) -> dict[str, Any]:
    """``reference_prices: {sources: [...], max_step: N}``: the price sources trusted to value events
    (a price event names its source itself, so an untrusted one, such as a participant's own feed, could
    otherwise value every trade at nothing), and the optional plausibility band."""
    if not isinstance(raw, dict):
        problems.append(f"{_PRICES}': must be a mapping with sources (and optionally max_step), not {show(raw)}")
        return {}
    found: dict[str, Any] = {}
    sources = raw.get("sources")
    problem = _price_sources_problem(sources)
    if problem:
        problems.append(f"{_PRICES}.sources': {problem}")
    elif isinstance(sources, list):
        found["price_sources"] = tuple(sources)
    if "max_step" in raw and raw["max_step"] is None:
        problems.append(f"{_PRICES}.max_step': {_NULL}")
    if raw.get("max_step") is not None:
        try:
            step = ParamReader(raw).req_decimal("max_step")
        except ParamError as exc:
            problems.append(f"{_PRICES}.max_step': {exc.reason}")
        else:
            if step <= 1:
                problems.append(f"{_PRICES}.max_step': must be a factor above 1 (10: a tenth to ten times), not {step}")
            else:
                found["max_price_step"] = step
    if "publishers" in raw:
        publishers = raw["publishers"]
        problem = _publishers_problem(publishers)
        if problem:
            problems.append(f"{_PRICES}.publishers': {problem}")
        elif isinstance(publishers, list):
            found["price_publishers"] = tuple(publishers)
    for name in sorted(str(k) for k in raw if k not in ("sources", "max_step", "publishers", _LINE)):
        problems.append(f"{_PRICES}.{name[:60]}': not a field of reference_prices (sources, max_step, publishers)")
    return found


def _price_sources_problem(sources: Any) -> str | None:
    if not isinstance(sources, list) or not sources:
        return f"must be a non-empty list of price source names (such as binance), not {show(sources)}"
    return _identifier_items_problem(sources, "price source name")


def _publishers_problem(publishers: Any) -> str | None:
    if not isinstance(publishers, list):
        return f"must be a list of publisher names (market feeds), not {show(publishers)}"
    return _identifier_items_problem(publishers, "publisher name")


def _identifier_items_problem(items: list[Any], what: str) -> str | None:
    """The first item of a reference_prices list that is not an identifier (matched exactly against events'
    fields, so no blank or invisible character), as the problem to report."""
    for position, item in enumerate(items, start=1):
        if not isinstance(item, str) or not item or len(item) > HEADER_TEXT_MAX:
            return f"item {position} ({show(item)}) is not a {what}"
        problem = unicode_problem(item) or hidden_character(item) or identifier_problem(item)
        if problem:
            return f"item {position} ({show(item)}) {problem}"
    return None


# Rule kinds that read reference prices: the value-based ones, and price_deviation (its own sources must be
# trusted ones).
_PRICED = "price_deviation"


def _price_problems(header: LicenceHeader, rules: list[RuleSpec]) -> list[str]:
    """A licence whose rules read prices names the sources it trusts (docs/licence.md, reference_prices)."""
    readers = [rule for rule in rules if RULE_KINDS[rule.kind].valued or rule.kind == _PRICED]
    if not readers:
        return []
    trusted = header.price_sources
    if not trusted:
        names = ", ".join(f"'{rule.id}'" for rule in readers)
        return [
            f"{_PRICES}': missing, and rule(s) {names} read reference prices: name the sources whose prices "
            "count, such as reference_prices: {sources: [binance]}"
        ]
    problems = []
    for rule in readers:
        if rule.kind == _PRICED:
            untrusted = [source for source in rule.params.sources if source not in trusted]
            if untrusted:
                problems.append(
                    f"rule '{rule.id}' (line {rule.line}): field 'sources': {', '.join(map(show, untrusted))} "
                    f"not among the trusted price sources (reference_prices.sources: {', '.join(trusted)})"
                )
    return problems


def _rule(raw: Any, index: int, header: LicenceHeader, base_dir: Path, problems: list[str]) -> RuleSpec | None:
    if not isinstance(raw, dict):
        problems.append(f"rule #{index + 1}: must be a mapping with id, kind, severity and clause")
        return None
    line = raw.get(_LINE)
    rule_id = raw.get("id")
    kind_name = raw.get("kind")
    named = isinstance(rule_id, str) and RULE_ID.fullmatch(rule_id) is not None
    where = f"rule '{rule_id}' (line {line})" if named else f"rule #{index + 1} (line {line})"
    ok = named
    if rule_id is None:
        problems.append(f"{where}: field 'id': missing")
    elif not named:
        problems.append(
            f"{where}: field 'id': must be a name of 1 to 64 characters a-z, 0-9, '_' and '-' (such as tx-cap), "
            f"not {show(rule_id)}"
        )
    kind = RULE_KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        known = ", ".join(sorted(RULE_KINDS))
        problems.append(f"{where}: field 'kind': unknown rule kind {show(kind_name)} (known: {known})")
        ok = False
    severity = raw.get("severity")
    if severity not in SEVERITIES:
        problems.append(f"{where}: field 'severity': must be one of {', '.join(SEVERITIES)}, not {show(severity)}")
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
    except (TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        # A value of a shape the kind's parser did not foresee: still a rejection naming the rule and the
        # field it was reading.
        field = reader.last or "?"
        problems.append(f"{where}: field '{field}': could not be read ({type(exc).__name__}: {str(exc)[:200]})")
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
    if len(text) > MAX_BYTES:
        raise LicenceError(source, [f"a licence of {len(text):,} characters is larger than {MAX_BYTES:,}"])
    try:
        document = yaml.load(text, Loader=_Loader)
    except DuplicateKey as exc:
        raise LicenceError(source, [str(exc)]) from None
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(source, exc) from None
    except yaml.YAMLError as exc:
        raise LicenceError(source, [f"not valid YAML: {one_line(str(exc))}"]) from None
    except RecursionError:
        raise LicenceError(source, [f"nested deeper than {MAX_DEPTH} levels"]) from None
    if not isinstance(document, dict):
        raise LicenceError(source, ["a licence must be a mapping with 'licence' and 'rules'"])
    problems: list[str] = []
    for name in sorted(str(k) for k in document if k not in ("licence", "rules", _LINE)):
        problems.append(f"the licence file: field '{name[:60]}': not a top-level field (licence, rules)")
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
    if not problems:
        problems += _price_problems(header, rules)
    if problems:
        raise LicenceError(source, problems)
    return Licence(header=header, rules=tuple(rules), source=source)


def one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _yaml_error(source: str, exc: yaml.MarkedYAMLError) -> LicenceError:
    """PyYAML's message is several lines quoting ``in "<unicode string>", line N, column M`` and a caret:
    one line instead, at the problem's position, naming where the construct it is inside began."""
    mark = exc.problem_mark or exc.context_mark
    problem = one_line(exc.problem or exc.context or "not valid YAML")
    context = exc.context_mark
    if exc.context and exc.problem and context is not None:
        problem += f" ({one_line(exc.context)} at line {context.line + 1}, column {context.column + 1})"
    if mark is None:
        return LicenceError(source, [f"not valid YAML: {problem}"])
    line, column = mark.line + 1, mark.column + 1
    located = f"not valid YAML at line {line}, column {column}: {problem}"
    return LicenceError(source, [located], at=(line, column, f"not valid YAML: {problem}"))


def _licence_bytes(path: str | Path) -> bytes:
    try:
        data, _ = read_regular_file(path, MAX_BYTES, "licence")
    except InputFileError as exc:
        raise LicenceError(str(path), [f"the file {exc.reason}"]) from None
    return data


def licence_body(path: str | Path) -> str:
    """A licence file's text as the store records it (newlines as ``\\n``, so a version is recognised whatever
    its line endings), read with the same bounds as ``load_licence``: the file is read again when recorded,
    and by then it may have been swapped for a FIFO, a device or a far larger file."""
    data = _licence_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LicenceError(str(path), [f"not UTF-8 text at {undecodable(data, exc)}"]) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def load_licence(path: str | Path) -> Licence:
    location = Path(path)
    data = _licence_bytes(location)
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line, column = byte_position(data, exc.start)
        byte = f"byte offset {exc.start}: 0x{data[exc.start]:02x}"
        at = (line, column, f"not UTF-8 text ({byte}); save the licence as UTF-8")
        raise LicenceError(str(path), [f"not UTF-8 text at {undecodable(data, exc)}"], at=at) from None
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
