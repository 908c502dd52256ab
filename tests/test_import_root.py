"""One import root: every part is ``sandboxwatch.<part>``, and nothing installs a bare ``store`` or ``api``.

The design card keeps the parts as top-level folders (``rules_engine/``, ``streams/``, ...), where a reader looks
for them; ``sandboxwatch/<part>`` is a symlink to each, so the installed distribution has a single top-level
package. A bare ``import store`` would bind whatever other distribution (or a local ``store.py``) got there first,
and two import paths for one file would give two copies of every class: both are refused here.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("alerts", "api", "ingest", "rules_engine", "simulator", "store", "streams")


def _python_files() -> list[Path]:
    files: list[Path] = []
    for folder in (*PARTS, "sandboxwatch", "tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            if not any(part in {".venv", "node_modules"} for part in path.parts):
                files.append(path)
    return sorted(set(files))


def test_every_part_is_a_symlink_under_the_one_root() -> None:
    for part in PARTS:
        link = ROOT / "sandboxwatch" / part
        assert link.is_symlink(), f"sandboxwatch/{part} must link to the top-level folder {part}/"
        assert os.readlink(link) == f"../{part}"
        assert (ROOT / part / "__init__.py").is_file()


def test_no_module_imports_a_part_by_its_bare_name() -> None:
    offenders: list[str] = []
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            offenders += [f"{where}: import {name}" for name in names if name.split(".")[0] in PARTS]
    assert offenders == [], "import the part as sandboxwatch.<part>:\n" + "\n".join(offenders)


def test_the_installed_distribution_has_one_top_level_package(tmp_path: Path) -> None:
    """Run from a directory that is not the repo, as a user of the installed package would."""
    probe = (
        "import importlib.util, json\n"
        f"parts = {PARTS!r}\n"
        "bare = {p: importlib.util.find_spec(p) is not None for p in parts}\n"
        "import sandboxwatch.rules_engine.engine, sandboxwatch.store.schema, sandboxwatch.api.app\n"
        "print(json.dumps({'bare': bare, 'engine': sandboxwatch.rules_engine.engine.__file__}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    import json

    result = json.loads(out.stdout)
    assert result["bare"] == dict.fromkeys(PARTS, False), result
    assert Path(result["engine"]).resolve() == ROOT / "rules_engine" / "engine.py"
