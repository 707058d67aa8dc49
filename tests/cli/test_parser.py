"""apckx._cli.build_parser: a known command gets only its own sub-parser; without one, every
command is listed (``apckx --help``, a mistyped name), as before."""

from __future__ import annotations

import argparse

import pytest

from apckx._cli import COMMANDS, build_parser, main


def sub_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_a_known_command_builds_only_its_own_parser() -> None:
    assert list(sub_parsers(build_parser(["import-kek", "--kek-env", "X"]))) == ["import-kek"]
    assert list(sub_parsers(build_parser(["--version", "kcv"]))) == ["kcv"]


@pytest.mark.parametrize("argv", [[], ["--help"], ["import-kex"]])
def test_without_a_known_command_every_command_is_listed(argv: list[str]) -> None:
    assert list(sub_parsers(build_parser(argv))) == list(COMMANDS)


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, command in COMMANDS.items():
        assert name in out and command.help[:30] in out


def test_a_mistyped_command_names_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import-kex"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'import-kex'" in err
    assert all(repr(name) in err for name in COMMANDS)


def test_a_command_s_usage_error_is_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kcv", "--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: apckx kcv ")
    assert "apckx kcv: error: " in err
