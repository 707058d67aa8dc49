"""Every README example runs as written (issue 12: the ``tr31 inspect`` one did not).

* A transcript (a shell block whose lines start with ``$ ``) of offline commands is run as
  written, in a scratch directory with this venv's ``apckx`` first on PATH, and its output
  must be the README's, line for line.
* Every other ``apckx ...`` line of a shell block is parsed by apckx's own argument parser
  (placeholders such as ``<64 hex>`` filled in), so an example naming an option apckx does not
  have fails here. Lines that elide their arguments with ``...`` are not examples.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from apckx._cli import COMMANDS, build_parser

README = Path(__file__).resolve().parents[2] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SHELL_LANGUAGES = ("sh", "bash", "console", "")
PLACEHOLDERS = {"<64 hex>": "00" * 31 + "01", "<id>": "kek-20261128T211702Z-334f5d36"}
OFFLINE = {name for name, command in COMMANDS.items() if not command.uses_aws} - {
    "demo",  # runs a whole ceremony in-process: tested in tests/cli/test_demo.py
    "emulator",  # serves until stopped
}


def shell_blocks() -> list[tuple[int, str]]:
    """(line number, text) of every shell code block in the README."""
    text = README.read_text(encoding="utf-8")
    return [
        (text[: m.start()].count("\n") + 2, m.group(2))
        for m in FENCE.finditer(text)
        if m.group(1) in SHELL_LANGUAGES
    ]


def joined_lines(block: str) -> list[str]:
    """The block's lines with ``\\`` continuations joined."""
    lines: list[str] = []
    pending = ""
    for line in block.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    return lines


def transcripts() -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """Each transcript block: its id and its (command, expected output lines) steps."""
    found = []
    for line_number, block in shell_blocks():
        lines = joined_lines(block)
        if not lines or not lines[0].startswith("$ "):
            continue
        steps: list[tuple[str, list[str]]] = []
        for line in lines:
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line.rstrip())
        found.append((f"README.md:{line_number}", steps))
    return found


def example_commands() -> list[tuple[str, list[str]]]:
    """Every ``apckx ...`` example line, as an argument list (placeholders filled in)."""
    found = []
    for line_number, block in shell_blocks():
        for offset, line in enumerate(joined_lines(block)):
            text = line[2:] if line.startswith("$ ") else line
            if not text.startswith("apckx "):
                continue
            text = re.split(r"\s(?:\||&&|;)\s", text)[0]
            text = re.sub(r"\s&\s*(#.*)?$", "", text)  # run in the background
            for placeholder, value in PLACEHOLDERS.items():
                text = text.replace(placeholder, value)
            argv = shlex.split(text, comments=True)[1:]
            if "..." in argv:
                continue  # an elided command line, not an example
            found.append((f"README.md:{line_number + offset}", argv))
    return found


TRANSCRIPTS = transcripts()
EXAMPLES = example_commands()


def test_the_readme_has_examples_of_every_command() -> None:
    named = {argv[0] for _, argv in EXAMPLES}
    assert {"import-kek", "import-key", "export-key", "migrate", "cleanup", "tr31", "kcv"} <= named
    assert len(TRANSCRIPTS) >= 2


@pytest.mark.parametrize(("where", "argv"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_readme_example_parses(where: str, argv: list[str]) -> None:
    parser = build_parser(argv)
    try:
        parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed why on stderr
        pytest.fail(f"{where}: apckx {' '.join(argv)} does not parse (exit {exc.code})")


@pytest.mark.parametrize(("where", "steps"), TRANSCRIPTS, ids=[w for w, _ in TRANSCRIPTS])
def test_readme_transcript_runs_as_written(
    where: str, steps: list[tuple[str, list[str]]], tmp_path: Path
) -> None:
    commands = [c for command, _ in steps for c in re.findall(r"\bapckx (\S+)", command)]
    if not set(commands) <= OFFLINE:
        pytest.skip(f"{where} calls AWS ({', '.join(sorted(set(commands) - OFFLINE))})")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for command, expected in steps:
        done = subprocess.run(
            ["/bin/bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{where}: {command}: {done.stderr.strip()}"
        assert done.stderr == "", f"{where}: {command}: {done.stderr.strip()}"
        assert [line.rstrip() for line in done.stdout.splitlines()] == expected, where
