"""CSV event files made from the corpus's JSONL days (issue 18's adversary): the contract's columns, lists
';'-separated, objects as JSON cells, then character-level mutants of the CSV text.

    python tests/throughput_diff/csv_inputs.py IN_DIR OUT_DIR
"""

from __future__ import annotations

import csv
import io
import json
import random
import sys
from pathlib import Path

from tests.throughput_diff.gen_inputs import char_mutants


def to_csv(lines: list[str]) -> str:
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if type(row) is dict and all(type(k) is str for k in row):
            rows.append(row)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        cells = []
        for name in columns:
            value = row.get(name)
            if value is None:
                cells.append("")
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                cells.append(";".join(value))
            elif isinstance(value, (dict, list)):
                cells.append(json.dumps(value))
            elif isinstance(value, bool):
                cells.append("true" if value else "false")
            else:
                cells.append(str(value))
        writer.writerow(cells)
    return out.getvalue()


def main() -> None:
    source, folder = Path(sys.argv[1]), Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("dn-perturbed-s1", "nat-perturbed-s1", "dn-mixed-s3", "nat-memo", "dn-hostile"):
        lines = (source / f"{name}.jsonl").read_bytes().decode("utf-8", "surrogateescape").split("\n")
        text = to_csv(lines)
        (folder / f"{name}-csv.csv").write_bytes(text.encode("utf-8", "surrogatepass"))
        rows = text.split("\r\n")
        mutants = char_mutants(rows[1:], random.Random(len(name)), 300)
        mixed = rows[:1] + [m for pair in zip(rows[1:301], mutants, strict=False) for m in pair] + rows[301:]
        (folder / f"{name}-csvmut.csv").write_bytes("\r\n".join(mixed).encode("utf-8", "surrogatepass"))
    print(sorted(p.name for p in folder.iterdir()))


if __name__ == "__main__":
    main()
