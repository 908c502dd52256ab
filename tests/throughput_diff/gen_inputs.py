"""Writes the differential corpus (issue 18's adversary): event files of both licences, as bytes, each with
the stream messages the publisher would make of it. Run it under main's code (PYTHONPATH=<main checkout>):
the inputs are made once and read by both sides, so nothing of the candidate shapes them.

    PYTHONPATH=<main> python tests/throughput_diff/gen_inputs.py OUT_DIR [--small]
"""

from __future__ import annotations

import contextlib
import copy
import json
import pickle
import random
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
from sandboxwatch.streams.publish import line_messages, polls

ROOT = Path(__file__).resolve().parents[2]
LICENCES = {
    "dn": ROOT / "config" / "licences" / "da-nang-pilot.yaml",
    "nat": ROOT / "config" / "licences" / "national-pilot.yaml",
}


def sim_day(path: Path, seed: int, accounts: int, events: int) -> list[str]:
    licence = load_licence(path)
    scenario = build_scenario(licence, SimulationConfig(accounts=accounts, seed=seed, target_events=events))
    return [line.rstrip("\n") for line in scenario_lines(scenario)]


def shift(stamp: str, delta: timedelta) -> str:
    return (datetime.fromisoformat(stamp) + delta).isoformat()


def perturb(lines: list[str], rng: random.Random, valid_until: str, retraction_chain: str | None) -> list[str]:
    """Out of order, duplicates, conflicting duplicates, late events, after-term events, retractions,
    untrusted and refused prices, all in one day."""
    rows = [json.loads(line) for line in lines]
    out: list[str] = []
    transfers = [r for r in rows if r["type"] == "transfer"]
    for index, row in enumerate(rows):
        draw = rng.random()
        text = json.dumps(row, separators=(",", ":"))
        if draw < 0.02:  # exact duplicate, now or a little later
            out.append(text)
            out.insert(max(0, len(out) - rng.randint(0, 30)), text)
            continue
        if draw < 0.035:  # conflicting duplicate: same id, another value
            other = copy.deepcopy(row)
            for key in ("amount", "quantity", "price", "custody_balance"):
                if key in other:
                    other[key] = str(rng.choice([1, 7, 123456789, 99999999999]))
                    break
            else:
                other["ts"] = shift(other["ts"], timedelta(seconds=rng.randint(1, 90)))
            out.append(text)
            out.append(json.dumps(other, separators=(",", ":")))
            continue
        if draw < 0.05:  # late beyond allowed_lateness, or a little late
            late = copy.deepcopy(row)
            late["ts"] = shift(row["ts"], -timedelta(minutes=rng.choice([5, 45, 90, 600, 3000])))
            out.append(json.dumps(late, separators=(",", ":")))
            continue
        if draw < 0.06 and index > 5:  # out of order: swap with a recent line
            out.insert(len(out) - rng.randint(1, min(5, len(out))), text)
            continue
        if draw < 0.063:  # after the term
            after = copy.deepcopy(row)
            after["ts"] = shift(valid_until, timedelta(seconds=rng.randint(1, 86400)))
            after["event_id"] = row["event_id"] + "-after"
            out.append(json.dumps(after, separators=(",", ":")))
            continue
        if draw < 0.07 and row["type"] == "price":
            for source, factor in (("evil", 1), ("binance", 50), ("okx", 0.01), ("binance", 1.0000001)):
                odd = copy.deepcopy(row)
                odd["event_id"] = f"{row['event_id']}-{source}-{factor}"
                odd["source"] = source
                with contextlib.suppress(TypeError, ValueError):
                    odd["price"] = str(round(float(row["price"]) * factor, 7))
                out.append(json.dumps(odd, separators=(",", ":")))
        out.append(text)
        if transfers and rng.random() < 0.01:
            target = rng.choice(transfers)
            retraction = {"event_id": f"rt-{index}", "type": "retraction", "participant": row["participant"],
                          "ts": row["ts"], "retracts": rng.choice([target["event_id"], "nope"]), "reason": "reorg",
                          "chain": rng.choice([retraction_chain or "ethereum", "tron"]),
                          "block": rng.choice([target.get("block", 1), 1])}  # fmt: skip
            if "block_hash" in target and rng.random() < 0.7:
                retraction["block_hash"] = target["block_hash"]
            out.append(json.dumps(retraction))
            if rng.random() < 0.3:
                out.append(json.dumps({**retraction, "event_id": f"rt2-{index}"}))
    return out


def retractions(lines: list[str], chain: str) -> list[str]:
    out = []
    for row in [json.loads(line) for line in lines if '"type":"transfer"' in line][:3]:
        retraction = {"event_id": f"rx-{row['event_id']}", "type": "retraction", "participant": row["participant"],
                      "ts": row["ts"], "retracts": row["event_id"], "reason": "reorg", "chain": chain,
                      "block": row.get("block", 1)}  # fmt: skip
        if "block_hash" in row:
            retraction["block_hash"] = row["block_hash"]
        out.append(json.dumps(retraction))
    return out


def char_mutants(lines: list[str], rng: random.Random, count: int) -> list[str]:
    alphabet = ['"', "{", "}", ",", ":", "0", "9", ".", "-", "+", "e", "E", " ", "\t", "\\", "T", "t", "Z", "z",
                "\u200b", "é", "\x00", "\udc80", "\ud800", "\ufeff", "\r", "a", "x"]  # fmt: skip
    out = []
    for _ in range(count):
        text = rng.choice(lines)
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            at = rng.randrange(len(text))
            how = rng.randrange(3)
            piece = rng.choice(alphabet)
            if how == 0:
                text = text[:at] + text[at + 1 :]
            elif how == 1:
                text = text[:at] + piece + text[at:]
            else:
                text = text[:at] + piece + text[at + 1 :]
        out.append(text.replace("\n", ""))
    return out


def fuzz_mutants(lines: list[str], rng: random.Random, count: int) -> list[str]:
    """The mutation classes of tests/test_fuzz_events.py (main's copy) applied to this day's rows."""
    from tests import test_fuzz_events as fuzz

    rows = [json.loads(line) for line in lines]
    out = []
    names = sorted(fuzz.MUTATIONS)
    for _ in range(count):
        row = copy.deepcopy(rng.choice(rows))
        try:
            text = str(fuzz.MUTATIONS[rng.choice(names)](rng, row))
        except (StopIteration, IndexError, ValueError, AssertionError, KeyError):
            continue
        out.extend(text.split("\n") if "\n" in text and rng.random() < 0.5 else [text.replace("\n", " ")])
    return out


TS_VARIANTS = ["{d}T{t}+07:00", "{d}T{t}Z", "{d}T{t}.5+07:00", "{d}T{t}.50+07:00", "{d}T{t}.123456+07:00",
               "{d}T{t}.1234567+07:00", "{d}T{t}+07:30", "{d}T{t}-00:00", "{d}T{t}+00:00", "{d}t{t}z", "{d}T{t}z",
               "{d} {t}+07:00", "{d}T{t}+0700", "{d}T{t}", "{d}T{t},5+07:00", "{d}T23:59:60+07:00",
               "{d}T24:00:00+07:00", "{d}T{t}+14:00", "{d}T{t}-12:00", "{d}T{t}.000000+07:00", "{d}T{t}.0Z",
               "{d}T{t}+07:00:00", "{d}T{t}+07", "{d}T{t}.+07:00", "{d}T{t} +07:00", " {d}T{t}+07:00"]  # fmt: skip
AMOUNTS = ["1", "1.0", "1.50", "1.5", "01.5", "1.5e0", "15E-1", "-0", "0", "0.0", "-1.5", "1e999", "1e-999", " 1.5",
           "1.5 ", "1_5", "+1.5", ".5", "5.", "1.5\u200b", "١٫٥", "１", "9" * 19, "9" * 20, "0." + "0" * 17 + "1",
           "123456789012345678.9", "1.500000000000000000001", "NaN", "Infinity", "-Infinity", "1e5",
           "1E+5"]  # fmt: skip
NUMBERS: list[Any] = [1.5, 1, 0, -0.0, 1e300, 10**30, True, None, [], {}]


def memo_mixtures(lines: list[str], rng: random.Random, count: int) -> list[str]:
    """Lines a memo may learn from, then near-twins: the same text prefix with another offset or fraction,
    the same amount text in another field, the same name with a blank or case change, numbers as JSON numbers."""
    rows = [json.loads(line) for line in lines if '"type":"trade"' in line or '"type":"deposit"' in line
            or '"type":"withdrawal"' in line or '"type":"price"' in line or '"type":"transfer"' in line
            or '"type":"account"' in line or '"type":"reserve"' in line]  # fmt: skip
    out = []
    for _ in range(count):
        row = copy.deepcopy(rng.choice(rows))
        out.append(json.dumps(row))
        stamp = datetime.fromisoformat(row["ts"])
        d, t = stamp.strftime("%Y-%m-%d"), stamp.strftime("%H:%M:%S")
        twin = copy.deepcopy(row)
        twin["event_id"] = row["event_id"] + "-tw"
        which = rng.randrange(6)
        if which == 0:
            twin["ts"] = rng.choice(TS_VARIANTS).format(d=d, t=t)
        elif which == 1:
            numeric = [k for k in ("amount", "quantity", "price", "fee", "custody_balance", "client_liabilities")
                       if k in twin]  # fmt: skip
            if numeric:
                key = rng.choice(numeric)
                twin[key] = rng.choice(AMOUNTS + NUMBERS)
        elif which == 2:
            numeric = [k for k in ("amount", "quantity", "price", "fee", "custody_balance") if k in twin]
            if len(numeric) >= 2:  # the same amount text in another field
                a, b = rng.sample(numeric, 2)
                twin[b] = twin[a]
            elif numeric:
                twin["fee"], twin["fee_asset"] = twin[numeric[0]], rng.choice(["VND", "USDT", "vnd", ""])
        elif which == 3:
            names = [k for k in ("account", "asset", "base", "quote", "participant", "site", "source", "chain",
                                 "counterparty_account", "fee_asset") if isinstance(twin.get(k), str)]  # fmt: skip
            if names:
                key = rng.choice(names)
                twin[key] = rng.choice([twin[key] + " ", twin[key].lower(), twin[key].upper(), twin[key] + "\u200b",
                                        twin[key][:-1], " " + twin[key], twin[key] + "x"])  # fmt: skip
        elif which == 4:
            for key in ("completed_ts",):
                if key in twin:
                    twin[key] = rng.choice(TS_VARIANTS).format(d=d, t=t)
            twin["ts"] = rng.choice(TS_VARIANTS[:9]).format(d=d, t=t)
        else:
            if "travel_rule" in twin and isinstance(twin["travel_rule"], dict):
                party = twin["travel_rule"].get("originator") or {}
                twin["travel_rule"]["beneficiary"] = dict(party)
                if rng.random() < 0.5 and isinstance(party, dict):
                    twin["travel_rule"]["originator"] = {**party, "name": str(party.get("name", "")) + " "}
            elif "wallets" in twin and isinstance(twin["wallets"], list):
                twin["wallets"] = twin["wallets"] + [(twin["wallets"] or ["0xab"])[0].upper()]
            else:
                twin["site"] = rng.choice([None, "", "DN-NN", "dn-nn", 5])
        out.append(json.dumps(twin, ensure_ascii=rng.random() < 0.5))
        # And the original again after the twin (a memo must not keep what the twin taught it).
        if rng.random() < 0.3:
            out.append(json.dumps({**row, "event_id": row["event_id"] + "-again"}))
    return out


def hostile_lines(lines: list[str], participant: str) -> list[str]:
    base = json.loads(next(line for line in lines if '"type":"deposit"' in line))
    head = json.dumps(base)
    out = [
        "", "   ", "\ufeff" + head, head + "\r", "{}", "[]", "null", "1", '"x"', "{" * 100 + "}" * 100,
        "[" * 3000 + "]" * 3000, head[:-1] + ',"x":' + "[" * 600 + "]" * 600 + "}",
        head[:-1] + ',"n":1e999}', head[:-1] + ',"n":-0}', head[:-1] + ',"n":' + "9" * 5000 + "}",
        head[:-1] + ',"s":"\\ud800"}', head[:-1] + ',"s":"\\udc00\\ud800"}', head[:-1] + ',"s":"\\u0000"}',
        head.replace('"amount"', '"amount":"5","amount"', 1), head.replace('"amount"', '"am\\u006funt"', 1),
        head[:-1] + ',"event_id":"dup"}', head.replace('"type"', '"type":"trade","type"', 1),
        head[:-1] + "}}", head + " ", " " + head, head + "\t", head + "x", head.replace(":", " : "),
        head.replace('"deposit"', '"DEPOSIT"'), head.replace('"deposit"', '"depos\\u0069t"'),
        head.replace(participant, participant + "\\u200b"), head.replace(participant, "stranger"),
        json.dumps({**base, "participant": None}), json.dumps({**base, "participant": 5}),
        json.dumps({k: v for k, v in base.items() if k != "participant"}),
        json.dumps({k: v for k, v in base.items() if k != "event_id"}),
        json.dumps({k: v for k, v in base.items() if k != "ts"}), json.dumps({**base, "ts": None}),
        json.dumps({**base, "amount": 12.5}), json.dumps({**base, "amount": 12}), json.dumps({**base, "amount": True}),
        json.dumps({**base, "unknown_field": {"deep": [1, 2, {"x": None}]}}),
        json.dumps({**base, "type": "report", "kind": "suspicious"}), json.dumps({**base, "type": None}),
    ]  # fmt: skip
    for stamp in ("2025-10-01T10:00:60+07:00", "2025-12-31T23:59:60Z", "2025-10-01t10:00:00z",
                  "2025-10-01T10:00:00.999999999+07:00", "2025-10-01T24:00:00+07:00", "2025-10-01T10:00:00+24:00",
                  "2025-10-01T10:00:00-00:00", "2025-10-01T10:00:00.000+07:00", "+2025-10-01T10:00:00Z",
                  "2025-10-01T10:00:00+07:00\u200b", "2025-10-01T10:00:00+07:00 ", "2025-10-01T10:00+07:00",
                  "20251001T100000Z", "2025-10-01T10:00:00.5-03:30"):  # fmt: skip
        out.append(json.dumps({**base, "event_id": f"ts-{len(out)}", "ts": stamp}))
    for amount in AMOUNTS:
        out.append(json.dumps({**base, "event_id": f"am-{len(out)}", "amount": amount}))
    return out + nesting_lines(base)


def nesting_lines(base: dict[str, Any], full: bool = False) -> list[str]:
    """Objects nested 6 to 10 levels (the parser's bound is 8; ``full``, else 8 and 9), by lists, objects,
    both, empty innermost, brackets inside strings, with a repeated key or an escape beside them."""
    out = []
    head = json.dumps(base)[:-1]
    for levels in (6, 7, 8, 9, 10) if full else (8, 9):
        inner = levels - 1  # the line's own object is a level
        for opener, closer in (("[", "]"), ('{"k":', "}"), ('[{"k":', "}]")):
            count = inner if len(opener) == 1 or opener == '{"k":' else inner // 2
            for core in ("1", '"x"', "[]", "{}", '"[[[[[[[[[["', '"\\u005b"', "null")[: 7 if full else 3]:
                nested = opener * count + core + closer * count
                out.append(head + ', "deep": ' + nested + "}")
                out.append(head + ', "deep": ' + nested + ', "deep": 1}')
                out.append(head + ', "deep": ' + nested + ', "esc": "\\"}')
    out.append('{"a":' * 8 + "1" + "}" * 8)
    out.append('{"a":' * 9 + "1" + "}" * 9)
    out.append("[" * 8 + "]" * 8)
    out.append("[" * 9 + "]" * 9)
    out.append('{"a":' * 9 + "1" + "}" * 8)  # unbalanced and too deep
    return out


def write(folder: Path, name: str, lines: list[str], *, crlf: bool = False, bom: bool = False) -> None:
    text = ("\r\n" if crlf else "\n").join(lines) + "\n"
    data = (
        text.encode("utf-8", "surrogateescape")
        if all(not ("\ud800" <= c <= "\udbff") for c in text)
        else text.encode("utf-8", "surrogatepass")
    )
    if bom:
        data = b"\xef\xbb\xbf" + data
    (folder / f"{name}.jsonl").write_bytes(data)
    # The stream: each poll's lines as batch messages (the producers'), and each line alone as well.
    raw = data.split(b"\n")
    decoded = [line.decode("utf-8", "surrogateescape").rstrip("\r") for line in raw]
    batched = []
    for poll in polls(decoded, 1000):
        try:
            batched.extend(line_messages(poll))
        except UnicodeEncodeError:
            batched.extend((None, line.encode("utf-8", "surrogateescape")) for line in poll if line.strip())
    singles = [(None, line) for line in raw if line.strip()]
    with open(folder / f"{name}.messages.pickle", "wb") as out:
        pickle.dump({"batched": batched, "singles": singles}, out)


def build(folder: Path, small: bool) -> list[str]:
    """The corpus in ``folder``; ``small`` is the frozen test's (tests/test_throughput_differential.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    for tag, path in LICENCES.items():
        licence = load_licence(path)
        participant = licence.participant
        chains = list(licence.header.retraction_sources)
        valid_until = licence.header.valid_until.isoformat()
        specs = [(1, 40, 700)] if small else [(1, 80, 2500), (2, 200, 4000), (3, 40, 1200), (5, 400, 6000)]
        n = 60 if small else 800
        for seed, accounts, events in specs:
            day = sim_day(path, seed, accounts, events)
            rng = random.Random(seed * 1000 + len(tag))
            perturbed = perturb(day, rng, valid_until, chains[0] if chains else None)
            if small:  # retractions that hold (the small day draws too few by chance)
                perturbed += retractions(day, chains[0] if chains else "ethereum")
            write(folder, f"{tag}-perturbed-s{seed}", perturbed)
            mixed = list(day)
            for extra in (char_mutants(day, rng, n), fuzz_mutants(day, rng, n), memo_mixtures(day, rng, n)):
                for line in extra:
                    mixed.insert(rng.randrange(len(mixed) + 1), line)
            write(folder, f"{tag}-mixed-s{seed}", mixed)
            if small:
                write(folder, f"{tag}-hostile", hostile_lines(day, participant) + day[:100])
                write(folder, f"{tag}-crlf", day[:100] + char_mutants(day, rng, 20), crlf=True)
                write(folder, f"{tag}-bom", day[:50], bom=True)
                continue
            write(folder, f"{tag}-sim-s{seed}", day)
            if seed == 1:
                write(folder, f"{tag}-hostile", hostile_lines(day, participant) + day[:200])
                write(folder, f"{tag}-memo", day[:300] + memo_mixtures(day, rng, 3 * n))
                write(folder, f"{tag}-crlf", day[:500] + char_mutants(day, rng, 50), crlf=True)
                write(folder, f"{tag}-bom", day[:300], bom=True)
                write(folder, f"{tag}-chars", char_mutants(day, rng, 4 * n))
                write(folder, f"{tag}-fuzz", fuzz_mutants(day, rng, 4 * n))
    return sorted(p.name for p in folder.glob("*.jsonl"))


def main() -> None:
    print(build(Path(sys.argv[1]), "--small" in sys.argv))


if __name__ == "__main__":
    main()
