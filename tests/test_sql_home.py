"""SQL lives in store/, behind named query functions: nothing else writes a statement, quotes a value into
one, reaches past the store into its backend, or imports a private store name.

One home means one place to check the quoting (a participant formatted into SQL unquoted was found outside
store/ once) and one place to change when the schema does. Tests are left out on purpose: they tamper
with stored rows to prove the trail and the readers notice, which takes raw statements."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Folders never scanned, each with its reason.
NOT_SCANNED = {
    "store": "the home of SQL",
    "tests": "tests tamper with stored rows on purpose (see the module docstring)",
    ".venv": "installed packages",
    "tools": "npm packages for the chain tests",
    "sandboxwatch": "only symlinks to the parts, plus the entry points scanned below",
}
STATEMENT = re.compile(
    r"\bSELECT\b.*\bFROM\b|\bINSERT\s+INTO\b|\bALTER\s+TABLE\b|\bCREATE\s+(TABLE|DATABASE|VIEW|MATERIALIZED)\b"
    r"|\bDROP\s+(TABLE|DATABASE)\b|\bOPTIMIZE\s+TABLE\b|\bTRUNCATE\s+TABLE\b",
    re.DOTALL,
)
QUOTING_HELPERS = {"quote", "in_list", "datetime_literal", "utc_text"}
BACKEND_CALLS = {"rows", "insert", "command"}


def scanned_files() -> list[Path]:
    top = [p for p in ROOT.glob("*/**/*.py") if p.relative_to(ROOT).parts[0] not in NOT_SCANNED]
    entry_points = [p for p in (ROOT / "sandboxwatch").glob("*.py")]  # the real files, not the symlinked parts
    return sorted(top + entry_points + list(ROOT.glob("*.py")))


def string_texts(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string literal, an f-string with its holes shown as ``{}`` (``f"SELECT a FROM {db}.t"``)."""
    texts = []
    parts_of_fstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
            parts_of_fstrings.update(id(v) for v in node.values)
            texts.append((node.lineno, "".join(str(p) for p in parts)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts_of_fstrings:
            texts.append((node.lineno, node.value))
    return texts


def test_the_scan_covers_the_parts_and_the_entry_points() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in scanned_files()}
    for expected in (
        "sandboxwatch/cli.py",
        "alerts/notification_recorder.py",
        "streams/app.py",
        "simulator/scenario.py",
    ):
        assert expected in names
    assert not any(name.startswith(("store/", "tests/")) for name in names)


def test_the_statement_pattern_finds_sql_in_literals_and_fstrings() -> None:
    found = string_texts(ast.parse('x = f"SELECT body FROM {db}.licence_versions WHERE a = {b}"\ny = "select 1"'))
    assert [bool(STATEMENT.search(text)) for _, text in found if "body" in text] == [True]
    assert not STATEMENT.search("select the rows from the file")  # prose in lower case is not SQL


def test_no_sql_text_outside_store() -> None:
    offenders = []
    for path in scanned_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        offenders += [
            f"{path.relative_to(ROOT)}:{line}: {text[:80]!r}"
            for line, text in string_texts(tree)
            if STATEMENT.search(text)
        ]
    assert offenders == [], "SQL belongs in store/, behind a named query function"


def test_nothing_outside_store_quotes_values_into_sql_or_imports_private_store_names() -> None:
    offenders = []
    for path in scanned_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sandboxwatch.store"):
                for alias in node.names:
                    if alias.name.startswith("_") or (
                        node.module == "sandboxwatch.store.sql_text" and alias.name in QUOTING_HELPERS
                    ):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports {alias.name}")
            elif (
                isinstance(node, ast.Attribute)
                and node.attr in BACKEND_CALLS
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "backend"
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: calls backend.{node.attr}")
    assert offenders == [], "ask the store's named query functions instead"
