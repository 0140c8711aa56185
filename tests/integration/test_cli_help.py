"""The command line's help, as a user reads it: the real ``ocfs2lab`` console script at 80
and at 400 columns, for every command and group."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import typer

from ocfs2lab.cli import app
from ocfs2lab.runner.base import CommandResult
from ocfs2lab.runner.local import LocalRunner

pytestmark = pytest.mark.integration

OCFS2LAB = Path(sys.executable).parent / "ocfs2lab"


def commands(group: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the CLI, groups included (``()`` is ``ocfs2lab`` itself)."""
    found = [path]
    for name, sub in sorted(getattr(group, "commands", {}).items()):
        found += commands(sub, (*path, name))
    return found


CLI = typer.main.get_command(app)
COMMANDS = commands(CLI)
GROUPS = [w for w in COMMANDS if not w or w in (("image",), ("coverage",))]
#: The arguments each command takes, as its usage line must show them.
CLI_PARAMS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("coverage", "show"): ("REPORT_DIR",),
    ("coverage", "diff"): ("REPORT_A", "REPORT_B"),
}


def help_of(words: tuple[str, ...], columns: int) -> CommandResult:
    with LocalRunner() as runner:
        return runner.run(
            [str(OCFS2LAB), *words, "--help"],
            check=False,
            timeout=120,
            env={"COLUMNS": str(columns), "NO_COLOR": "1", "TERM": "dumb"},
        )


def test_every_command_is_listed() -> None:
    assert ("coverage", "diff") in COMMANDS and ("demo",) in COMMANDS and len(COMMANDS) > 15


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "ocfs2lab")
def test_help_shows_no_markup_artefacts(words: tuple[str, ...]) -> None:
    """No ``<bool>`` after a flag (a flag takes no value), no ``{report}`` in the usage line
    (arguments are upper case: ``REPORT_DIR``), nothing cut short, nothing past 80 columns."""
    result = help_of(words, 80)
    assert result.ok, result
    text = result.stdout
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage
    assert "<bool>" not in text and "<list[" not in text
    assert "…" not in text
    assert all(len(line) <= 80 for line in text.splitlines())
    for param in CLI_PARAMS.get(words, ()):
        assert param in usage, (param, usage)


def first_paragraph(doc: str) -> str:
    """A docstring's first paragraph as one line, without Markdown's backticks."""
    return " ".join(doc.split("\n\n", maxsplit=1)[0].replace("`", "").split())


@pytest.mark.parametrize("words", GROUPS, ids=lambda w: " ".join(w) or "ocfs2lab")
def test_command_lists_show_each_summary_on_one_line(words: tuple[str, ...]) -> None:
    """A group lists its commands with the first paragraph of each docstring, joined into one
    line when the terminal is wide enough (the docstrings are wrapped at 100 columns)."""
    group = CLI
    for word in words:
        group = group.commands[word]  # type: ignore[attr-defined]
    text = help_of(words, 400).stdout
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert group.commands, words  # type: ignore[attr-defined]
    for name, sub in group.commands.items():  # type: ignore[attr-defined]
        summary = first_paragraph(sub.help or "")
        row = re.compile(rf"│ {re.escape(name)} {re.escape(summary)} │")
        assert any(row.search(line) for line in lines), (name, summary)
