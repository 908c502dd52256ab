"""The tree is what the README's layout table says, and ``sandboxwatch/`` holds entry points only.

Domain logic lives in the part it belongs to (rules_engine/, store/, simulator/, ...); ``sandboxwatch/`` has
the commands, the embedded runner of ``up`` and a symlink to each part, so a reader finds a concern in one
place and the README's table stays a map of the repo."""

from __future__ import annotations

import re

from tests.helpers import ROOT
from tests.test_import_root import PARTS

# The modules of sandboxwatch/: the command line and what only it uses.
ENTRY_POINTS = {
    "__init__.py",
    "cases_cli.py",
    "replay_file.py",  # what up publishes for an events file (the embedded runner's)
    "cli.py",
    "cli_types.py",  # argument types every command shares (ports, bounded numbers)
    "embedded.py",
    "exit_codes.py",
    "finding_output.py",
    "gc_policy.py",
    "history_cli.py",
    "ingest_cli.py",
    "sanctions_cli.py",
    "store_options.py",  # the store options (--clickhouse, --participant, --from/--to, --out) commands share
}


def test_sandboxwatch_holds_entry_points_and_the_part_links_only() -> None:
    entries = {p.name for p in (ROOT / "sandboxwatch").iterdir() if p.name != "__pycache__"}
    assert entries == ENTRY_POINTS | set(PARTS)
    assert all((ROOT / "sandboxwatch" / part).is_symlink() for part in PARTS)


def test_the_readme_layout_table_matches_the_tree() -> None:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Layout", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([^`]+)/` \|", section, re.M)
    assert listed, "the layout table lists no folder"
    missing = [folder for folder in listed if not (ROOT / folder).is_dir()]
    assert missing == [], "the README lists folders that do not exist"
    # Folders of the repo, not what tools leave beside it (an editable install's metadata, build output).
    top = {
        p.name
        for p in ROOT.iterdir()
        if p.is_dir()
        and not p.name.startswith((".", "__"))
        and not p.name.endswith(".egg-info")
        and p.name not in {"build", "dist", "out"}
    }
    unlisted = sorted(top - {folder.split("/")[0] for folder in listed})
    assert unlisted == [], "top-level folders missing from the README's layout table"
