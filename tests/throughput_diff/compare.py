"""Compares two runner.py output folders byte for byte (main's and a candidate's) and prints each divergence
with its first differing line or key.

    python tests/throughput_diff/compare.py MAIN_OUT CANDIDATE_OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def first_difference(a: Any, b: Any, where: str = "") -> str | None:
    if type(a) is not type(b):
        return f"{where}: {str(a)[:300]!r} != {str(b)[:300]!r}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{where}.{key}: only on {'main' if key in a else 'candidate'}"
            found = first_difference(a[key], b[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        for index, (x, y) in enumerate(zip(a, b, strict=False)):
            found = first_difference(x, y, f"{where}[{index}]")
            if found:
                return found
        if len(a) != len(b):
            return f"{where}: length {len(a)} != {len(b)}"
        return None
    return None if a == b else f"{where}: {str(a)[:400]!r} != {str(b)[:400]!r}"


def compare(main: Path, candidate: Path, subset: bool = False) -> list[str]:
    """``subset``: the candidate ran on part of the corpus; compare what it made."""
    problems = []
    names = {p.name for p in candidate.iterdir() if p.is_file()}
    if not subset:
        names |= {p.name for p in main.iterdir() if p.is_file()}
    compared = 0
    for name in sorted(names):
        if name.startswith("whose-code"):
            continue
        if name.endswith(("reverse-pass-differs", "second-pass-differs")):
            problems.append(f"{name}: the second pass over the files in reverse order gave another output")
            continue
        left, right = main / name, candidate / name
        if not left.exists() or not right.exists():
            problems.append(f"{name}: only on {'main' if left.exists() else 'candidate'}")
            continue
        compared += 1
        a, b = left.read_bytes(), right.read_bytes()
        if a == b:
            continue
        if name.endswith(".json"):
            diff = first_difference(json.loads(a), json.loads(b))
            problems.append(f"{name}: {diff}")
        else:
            lines_a, lines_b = a.split(b"\n"), b.split(b"\n")
            for number, (x, y) in enumerate(zip(lines_a, lines_b, strict=False), 1):
                if x != y:
                    problems.append(f"{name} line {number}:\n  main: {x[:500]!r}\n  cand: {y[:500]!r}")
                    break
            else:
                problems.append(f"{name}: {len(lines_a)} lines != {len(lines_b)} lines")
    for path in candidate.glob("snap-*.json"):
        if not json.loads(path.read_bytes()).get("resumed_equals_uninterrupted", False):
            problems.append(f"{path.name}: the resumed engine's findings differ from main's uninterrupted run")
    print(f"{main} vs {candidate}: {compared} outputs compared, {len(problems)} divergences")
    return problems


if __name__ == "__main__":
    found = compare(Path(sys.argv[1]), Path(sys.argv[2]), "--subset" in sys.argv)
    for problem in found:
        print("DIVERGENCE", problem)
    sys.exit(1 if found else 0)
