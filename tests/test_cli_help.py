"""Every ``sandboxwatch`` command says what it does, and every option what it means and its default.

A command run by an operator at 3 a.m. is read through ``--help``; an option without help or a hidden
default is a question nobody is there to answer."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from sandboxwatch.cli import build_parser, main
from sandboxwatch.exit_codes import Unusable
from sandboxwatch.store.backends import StoreError


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


def _subcommand_help(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    return {
        choice.dest: choice.help
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for choice in action._choices_actions
    }


ALL = list(commands(build_parser()))


def test_the_walk_reaches_every_command() -> None:
    names = {" ".join(path) for path, _ in ALL}
    assert {"check", "up", "run", "licence validate", "ingest chain", "findings list", "audit verify"} <= names
    assert len(ALL) > 20


@pytest.mark.parametrize("path, parser", ALL, ids=[" ".join(p) or "sandboxwatch" for p, _ in ALL])
def test_every_command_and_option_has_help_with_its_default(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    problems = []
    if not parser.description:
        problems.append("no description")
    problems += [f"subcommand {name}: no help" for name, text in _subcommand_help(parser).items() if not text]
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        if not action.help or action.help == argparse.SUPPRESS:
            problems.append(f"{name}: no help")
            continue
        shown = formatter._expand_help(action)
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in shown:
            problems.append(f"{name}: default {action.default!r} not shown")
    assert problems == []


def test_top_level_help_is_plain_text() -> None:
    text = build_parser().format_help()
    assert "``" not in text and "../" not in text
    assert "exit" in text.lower()


def test_help_runs_for_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for path, _ in ALL:
        with pytest.raises(SystemExit) as info:
            main([*path, "--help"])
        assert info.value.code == 0, path
        assert "usage: sandboxwatch" in capsys.readouterr().out


def _project_error_types() -> list[type[BaseException]]:
    """Every exception class the project defines, found by importing each of its modules."""
    import importlib
    import pkgutil

    import sandboxwatch

    found: dict[str, type[BaseException]] = {}
    for module in pkgutil.walk_packages(sandboxwatch.__path__, "sandboxwatch."):
        if ".console" in module.name:
            continue
        loaded = importlib.import_module(module.name)
        for value in vars(loaded).values():
            if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == module.name:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[name] for name in sorted(found)]


def test_the_project_error_types_are_found() -> None:
    names = {cls.__name__ for cls in _project_error_types()}
    assert {"LicenceError", "SettingsError", "StoreError", "Unusable", "TokenError", "KeyFileError"} <= names


def test_any_project_error_reaching_main_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    import sandboxwatch.cli as cli
    from tests.helpers import DA_NANG

    events = tmp_path / "e.jsonl"
    events.write_text("{}\n")
    for cls in _project_error_types():
        error = cls.__new__(cls)
        BaseException.__init__(error, "the reason\nand its detail")

        def raising(*args: object, error: BaseException = error, **kwargs: object) -> object:
            raise error

        monkeypatch.setattr(cli, "run_check", raising)
        code = main(["check", "--licence", str(DA_NANG), "--events", str(events)])
        err = capsys.readouterr().err
        assert code == 2, cls
        assert err.startswith("sandboxwatch: the reason") and "Traceback" not in err, (cls, err)
        # Unusable (and StoreError) messages are written for the user as they are: a licence's reasons one per line.
        if not issubclass(cls, Unusable | StoreError):
            assert err.count("\n") == 1, (cls, err)
