"""Fuzzing the edge: mutated event lines and licences never crash anything, and never change what the
valid lines are found to be.

Each event mutation is one hostile edit of a real line from a simulated day (the classes of issue 13:
huge integers, huge exponents, magnitudes, edge times and offsets, lone surrogates and bad bytes, over-long
and mistyped text, broken structure, deep nesting, BOMs, stray ``retracts`` fields). Hypothesis chooses the
seeds and which class each batch leans on; one batch mutates cheaply with ``random`` so that a CI run
makes over 100,000 mutations in seconds. For every mutant:

- parsing returns an event or an error with its line and a reason, and never raises;
- an invalid mutant mixed into the day adds exactly one ``invalid_event`` finding and changes none of the
  day's findings;
- a mutant that is still a valid event (with a fresh id) is judged without any rule raising, and every
  finding can be written out as UTF-8 JSON.

The counts are printed at the end of the run (also without ``-s``)."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandboxwatch.rules_engine.builtin_findings import INVALID_EVENT
from sandboxwatch.rules_engine.engine import Engine
from sandboxwatch.rules_engine.event_parser import KNOWN_FIELDS
from sandboxwatch.rules_engine.event_reader import parse_json_line, read_jsonl
from sandboxwatch.rules_engine.events import Event, EventError
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.isolation import process_isolated
from sandboxwatch.rules_engine.licence import LicenceError, load_licence, parse_licence
from sandboxwatch.rules_engine.self_check import run_check
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
from tests.helpers import DA_NANG, NATIONAL

BATCH = 1000
BATCHES = 121  # > 100,000 event mutations per run, and > 5,000 of each class
LICENCE = load_licence(DA_NANG)


def _day() -> list[str]:
    """A small simulated day with one finding of every rule (its max_accounts injection trimmed)."""
    lines = list(scenario_lines(build_scenario(LICENCE, SimulationConfig(accounts=40, seed=3, target_events=300))))
    rows = [json.loads(line) for line in lines]
    used = {row.get("account") for row in rows if row["type"] != "account"}
    keep = [
        line
        for index, (line, row) in enumerate(zip(lines, rows, strict=True))
        if (row["type"] == "account" and (row["account"] in used or index % 50 == 0))
        or (row["type"] == "price" and index % 5 == 0)
        or row["type"] not in {"account", "price"}
    ]
    return keep


DAY = _day()
ROWS = [json.loads(line) for line in DAY]
BASELINE = {f.finding_id: f for f in run_check(LICENCE, read_jsonl(DAY, "day")).findings}
TEXT_FIELDS = ("event_id", "participant", "account", "site", "asset", "base", "quote", "chain", "address", "source")
NUMBER_FIELDS = ("quantity", "price", "amount", "custody_balance", "client_liabilities", "charter_capital_vnd")
HUGE = "__HUGE__"


def _field(rng: random.Random, row: dict[str, Any], names: tuple[str, ...]) -> str:
    present = [name for name in names if name in row]
    return rng.choice(present) if present else rng.choice(names)


def _digits(rng: random.Random, low: int, high: int) -> str:
    return str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(rng.randint(low, high) - 1))


def huge_int(rng: random.Random, row: dict[str, Any]) -> str:
    row[_field(rng, row, (*NUMBER_FIELDS, "block", "log_index"))] = HUGE
    text = json.dumps(row)
    return text.replace(f'"{HUGE}"', ("-" if rng.random() < 0.2 else "") + _digits(rng, 20, 5000))


def exponent(rng: random.Random, row: dict[str, Any]) -> str:
    name = _field(rng, row, NUMBER_FIELDS)
    power = rng.choice([rng.randint(20, 40), rng.randint(40, 10**6), 999999, 10**9, -rng.randint(19, 10**6)])
    mantissa = rng.choice(["1", "9.99", "-1", "0", "123456789"])
    if rng.random() < 0.5:
        row[name] = f"{mantissa}e{power}"
        return json.dumps(row)
    row[name] = HUGE
    return json.dumps(row).replace(f'"{HUGE}"', f"{mantissa}e{power}")  # a JSON float literal


def magnitude(rng: random.Random, row: dict[str, Any]) -> str:
    name = _field(rng, row, NUMBER_FIELDS)
    row[name] = rng.choice(
        [
            _digits(rng, 24, 60),
            "0." + "0" * rng.randint(18, 40) + "1",
            _digits(rng, 10, 20) + "." + _digits(rng, 10, 20),
            "1e27",
            "1e-27",
            "NaN",
            "-Infinity",
            "sNaN",
            "-" + _digits(rng, 1, 5),
            "0",
            " 1_000 ",
            "1,5",
            "0x10",
        ]
    )
    return json.dumps(row)


def edge_time(rng: random.Random, row: dict[str, Any]) -> str:
    year = rng.choice([1, 2, 1969, 2200, 9999, rng.randint(1, 9999)])
    offset = rng.choice(["+14:00", "-14:00", "+14:01", "-23:59", "+05:30:15", "Z", "", "+7", "+99:00"])
    stamp = rng.choice(
        [
            f"{year:04d}-01-01T00:00:00{offset}",
            f"2025-02-{rng.randint(29, 31)}T10:00:00+07:00",
            f"2025-10-01T24:00:00{offset}",
            "2025-10-01",
            "not a time",
            f"2025-10-01T10:00:00.{_digits(rng, 1, 30)}+07:00",
        ]
    )
    row["ts"] = stamp if rng.random() < 0.9 else rng.choice([0, 1.5, None, [], {}])
    return json.dumps(row)


def bad_text(rng: random.Random, row: dict[str, Any]) -> str:
    name = _field(rng, row, TEXT_FIELDS)
    row[name] = rng.choice(
        [
            "\ud800",
            "ok\udfff",
            "a" * rng.randint(257, 5000),
            "",
            "Nguy\u1ec5n \u0000 \u202e",
            '=HYPERLINK("http://x")',
            rng.randint(-5, 5),
            True,
            None,
            ["x"],
            {"a": 1},
        ]
    )
    return json.dumps(row)


def bad_bytes(rng: random.Random, row: dict[str, Any]) -> str:
    text = json.dumps(row, ensure_ascii=False)
    at = rng.randrange(len(text))
    # Bytes that are not UTF-8 arrive as surrogate escapes (the reader decodes with surrogateescape).
    return text[:at] + chr(0xDC80 + rng.randrange(128)) + text[at:]


def structure(rng: random.Random, row: dict[str, Any]) -> str:
    choice = rng.randrange(8)
    if choice == 0:
        row.pop(rng.choice(list(row)))
        return json.dumps(row)
    if choice == 1:
        text = json.dumps(row)
        return text[: rng.randrange(1, len(text))]
    if choice == 2:
        text = json.dumps(row)
        at = rng.randrange(len(text))
        return text[:at] + rng.choice(['"', "{", "}", "[", ",", ":", "\\", "\n", "\x00"]) + text[at + 1 :]
    if choice == 3:
        depth = rng.choice([9, 50, 5000, 30000])
        row["x"] = HUGE
        return json.dumps(row).replace(f'"{HUGE}"', "[" * depth + "]" * depth)
    if choice == 4:
        return rng.choice(["[]", "1", "null", '"text"', "true", "[" + json.dumps(row) + "]"])
    if choice == 5:
        row["type"] = rng.choice(["retraction", "TRADE", "trade ", "unknown", 7])
        return json.dumps(row)
    if choice == 6:
        name = rng.choice(["wallets", "refs", "travel_rule", "log_index", "bank_account_verified", "rail", "side"])
        row[name] = rng.choice([["a"] * rng.randint(0, 12_000), [1, 2], "a;b", {"originator": 5}, -2, "yes", 1.5])
        return json.dumps(row)
    return "\ufeff" + json.dumps(row)


class Refused(str):
    """A mutant line that must be refused, naming ``field`` (a class of bad input the parser once accepted)."""

    field: str

    @classmethod
    def on(cls, line: str, field: str) -> Refused:
        mutant = cls(line)
        mutant.field = field
        return mutant


def repeated_key(rng: random.Random, row: dict[str, Any]) -> str:
    """A key written twice: the same value or another, in any spelling orjson would take without a word."""
    key = rng.choice(list(row))
    again = rng.choice([row[key], "1", "999999999", 0, None, True, ["x"], {"a": "b"}])
    spelled = json.dumps(key) if rng.random() < 0.7 else '"' + "".join(f"\\u{ord(c):04x}" for c in key) + '"'
    colon = rng.choice([":", ": ", " :", "\t:\n", "  :  "])
    pair = spelled + colon + json.dumps(again, ensure_ascii=rng.random() < 0.5)
    text = json.dumps(row, ensure_ascii=rng.random() < 0.5)
    if rng.random() < 0.5:
        return Refused.on("{" + pair + ", " + text[1:], key)
    return Refused.on(text[:-1] + ", " + pair + "}", key)


def _lenient(rng: random.Random, digits: str) -> str:
    """A number Decimal() reads but the events' grammar does not."""
    foreign = rng.choice(["٠", "۰", "०", "０", "๐", "𝟎"])  # zeros of other scripts
    if rng.random() < 0.25:
        first = next(i for i, c in enumerate(digits) if c.isdigit())
        return "".join(
            chr(ord(foreign) + int(c)) if c.isdigit() and (i == first or rng.random() < 0.7) else c
            for i, c in enumerate(digits)
        )
    choice = rng.randrange(7)
    if choice == 0 and len(digits) > 1:
        at = rng.randrange(1, len(digits))
        return digits[:at] + "_" + digits[at:]
    if choice == 1:
        return "+" + digits
    if choice == 2:
        return rng.choice([" ", "\t", "\u00a0", "\n"]) + digits
    if choice == 3:
        return digits + rng.choice([" ", "\t", "\r\n", "\u2003"])
    if choice == 4:
        return digits.split(".")[0] + "."
    if choice == 5:
        return "." + digits.replace(".", "")
    return "-." + digits.replace(".", "")


def _read(row: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    """The names among ``names`` the parser reads for this row (present, and not an extra of its type)."""
    known = KNOWN_FIELDS.get(row["type"], frozenset()) | {"event_id", "participant", "site"}
    return [name for name in names if name in known and isinstance(row.get(name), str)]


def lenient_decimal(rng: random.Random, row: dict[str, Any]) -> str:
    present = _read(row, NUMBER_FIELDS)
    if not present:
        return huge_int(rng, row)
    name = rng.choice(present)
    row[name] = _lenient(rng, str(row[name]).lstrip("-") or "1")
    return Refused.on(json.dumps(row, ensure_ascii=rng.random() < 0.5), name)


def hidden_text(rng: random.Random, row: dict[str, Any]) -> str:
    """A control character or a bidirectional override in an id, a name or a code."""
    present = _read(row, (*TEXT_FIELDS, "tx_hash", "counterparty_account"))
    name = rng.choice(present)
    hidden = chr(rng.choice([*range(0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]))
    value = row[name]
    at = rng.randrange(len(value) + 1)
    row[name] = value[:at] + hidden + value[at:]
    return Refused.on(json.dumps(row, ensure_ascii=rng.random() < 0.5), name)


def fine_time(rng: random.Random, row: dict[str, Any]) -> str:
    """Nanoseconds: datetime would keep six digits of the fraction and drop the rest."""
    fraction = _digits(rng, 6, 6) + _digits(rng, 1, 12)
    stamp = re.fullmatch(r"(.{19})(?:[.,][0-9]+)?(.*)", row["ts"])
    assert stamp is not None
    row["ts"] = stamp.group(1) + rng.choice([".", ","]) + fraction + stamp.group(2)
    return Refused.on(json.dumps(row), "ts")


def stray_retracts(rng: random.Random, row: dict[str, Any]) -> str:
    row["retracts"] = rng.choice([r["event_id"] for r in rng.sample(ROWS, 3)])
    row["reason"] = "reorg"
    return json.dumps(row)


MUTATIONS: dict[str, Callable[[random.Random, dict[str, Any]], str]] = {
    f.__name__: f
    for f in (
        huge_int, exponent, magnitude, edge_time, bad_text, bad_bytes, structure, stray_retracts,
        repeated_key, lenient_decimal, hidden_text, fine_time,
    )
}  # fmt: skip


def _writable(finding: Finding) -> None:
    json.dumps(finding.to_dict(), ensure_ascii=False).encode("utf-8")


def _check_batch(seed: int, focus: str, counts: Counter[str]) -> None:
    rng = random.Random(seed)
    names = list(MUTATIONS)
    invalid: list[str] = []
    valid: list[Event] = []
    for index in range(BATCH):
        name = focus if rng.random() < 0.5 else rng.choice(names)
        row = dict(rng.choice(ROWS))
        line = MUTATIONS[name](rng, row)
        result = parse_json_line(line, "fuzz", index + 1)
        counts[name] += 1
        if isinstance(line, Refused):
            assert isinstance(result, EventError) and result.field == line.field, (name, line[:300], result)
        if isinstance(result, EventError):
            assert result.line == index + 1 and result.reason, line[:300]
            assert result.raw.encode("utf-8") is not None and (result.event_id or "").encode("utf-8") is not None
            invalid.append(line)
            counts["invalid"] += 1
        else:
            result.event_id = f"fuzz-{seed}-{index}"  # a fresh id: no duplicate noise
            valid.append(result)
            counts["valid"] += 1
    # Invalid mutants among the day's lines: one invalid_event finding each, the day's findings unchanged.
    mixed = run_check(LICENCE, read_jsonl([*DAY, *invalid], "mixed"))
    judged = {f.finding_id: f for f in mixed.findings if f.kind != INVALID_EVENT}
    assert judged == BASELINE
    assert sum(f.kind == INVALID_EVENT for f in mixed.findings) == len(invalid) == len(mixed.errors)
    for finding in mixed.findings:
        _writable(finding)
    # Valid mutants after the day: no rule raises on anything the parser accepts.
    engine = Engine(LICENCE)
    for _, event in read_jsonl(DAY, "day"):
        assert not isinstance(event, EventError)
        engine.process(event)
    for number, event in enumerate(valid, start=1):
        found, error = process_isolated(engine, event, "fuzz", number)
        assert error is None, (error, event)
        for finding in found:
            _writable(finding)


def test_event_mutations_never_crash_or_change_the_valid_findings(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(BASELINE) >= 15 and len(DAY) < 1000
    counts: Counter[str] = Counter()

    @settings(max_examples=BATCHES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2**32 - 1), focus=st.sampled_from(sorted(MUTATIONS)))
    def batch(seed: int, focus: str) -> None:
        _check_batch(seed, focus, counts)

    batch()
    total = sum(counts[name] for name in MUTATIONS)
    with capsys.disabled():
        print(
            f"\nfuzz: {total:,} event mutations ({counts['invalid']:,} refused, {counts['valid']:,} still valid): "
            + ", ".join(f"{name} {counts[name]:,}" for name in sorted(MUTATIONS))
        )
    assert total >= 100_000
    assert all(counts[name] >= 5_000 for name in MUTATIONS)


LICENCE_TEXTS = (DA_NANG.read_text(), NATIONAL.read_text())
HOSTILE_VALUES = (
    ".inf", "-.inf", ".nan", "1e30", "9" * 5000, "2025-02-30", "2025-02-30T00:00:00+07:00", "0001-01-01T00:00:00+14:00",
    "99999999999999d", "0s", "-1", "&a x", "*a", "[[[[[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]]]]]", "{a: 1}", "null", "~",
    "true", "'\\ud800'", '"\\ud800"', "!!python/object:os.system x", "!!binary aGk=", "2025-10-01", "? [a]", "|",
)  # fmt: skip


# Every rejection says where: the rule and field, the header field, or the YAML position.
_WHERE = (
    "rule '",
    "rule #",
    "licence header",
    "not valid YAML",
    "nested deeper",
    "'rules'",
    "'licence'",
    "a licence",
    "the licence file",
)
_PAIR = re.compile(r"(\w+): ([^,}\n]+)")


def test_licence_mutations_are_accepted_or_rejected_with_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    counts: Counter[str] = Counter()

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(
        which=st.integers(0, 1),
        line=st.integers(0, 60),
        value=st.sampled_from(HOSTILE_VALUES) | st.text(max_size=20),
        how=st.sampled_from(["value", "delete", "duplicate", "truncate", "insert"]),
    )
    def mutate(which: int, line: int, value: str, how: str) -> None:
        lines = LICENCE_TEXTS[which].splitlines()
        at = line % len(lines)
        target = lines[at]
        pairs = list(_PAIR.finditer(target))
        if how == "value" and pairs:
            pair = pairs[line % len(pairs)]
            lines[at] = target[: pair.start(2)] + value + target[pair.end(2) :]
        elif how == "delete":
            del lines[at]
        elif how == "duplicate":
            lines.insert(at, target)
        elif how == "truncate":
            lines[at] = target[: len(target) // 2]
        else:
            lines.insert(at, value)
        try:
            parse_licence("\n".join(lines), "fuzz.yaml")
            counts["accepted"] += 1
        except LicenceError as exc:
            assert exc.problems and all(problem.startswith(_WHERE) for problem in exc.problems), exc.problems
            str(exc).encode("utf-8", "surrogatepass")
            counts["rejected"] += 1

    mutate()
    with capsys.disabled():
        print(f"\nfuzz: {counts.total()} licence mutations ({counts['rejected']} rejected with reasons)")
    assert counts["rejected"] > 100
