"""Licence variants for the engine's generated per-event-type functions (issue 18's adversary): both
licences with their rules reversed, each rule alone, every other rule, a rule kind twice under two ids, and
other allowed_lateness values, written as YAML files for runner.py's ``check-licences`` mode.

    python tests/throughput_diff/licence_variants.py OUT_DIR
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from tests.throughput_diff.gen_inputs import LICENCES


def variants(text: str) -> dict[str, str]:
    lines = text.splitlines(keepends=True)
    rule_lines = [i for i, line in enumerate(lines) if line.startswith("  - {id:")]
    head, rules = lines[: rule_lines[0]], [lines[i] for i in rule_lines]
    tail = lines[rule_lines[-1] + 1 :]
    out = {"reversed": "".join(head + rules[::-1] + tail), "odd": "".join(head + rules[::2] + tail),
           "even": "".join(head + rules[1::2] + tail)}  # fmt: skip
    for index, rule in enumerate(rules):
        out[f"alone{index:02d}"] = "".join([*head, rule, *tail])
        twin = re.sub(r"\{id: ([^,]+),", r"{id: \1-twin,", rule, count=1)
        out[f"twice{index:02d}"] = "".join([*head, *rules, twin, *tail])
    body = "".join(head + rules + tail)
    for lateness in ("0s", "1s", "7d"):
        if "allowed_lateness:" in body:
            out[f"late{lateness}"] = re.sub(r"allowed_lateness: \S+", f"allowed_lateness: {lateness}", body)
        else:
            out[f"late{lateness}"] = body.replace("  reporting_currency:", f"  allowed_lateness: {lateness}\n"
                                                  "  reporting_currency:", 1)  # fmt: skip
    return out


def main() -> None:
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    for tag, path in LICENCES.items():
        for name, text in variants(path.read_text()).items():
            (folder / f"{tag}-{name}.yaml").write_text(text)
    print(len(list(folder.glob("*.yaml"))), "licences")


if __name__ == "__main__":
    main()
