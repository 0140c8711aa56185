"""What a script sees of a long operation: ``ocfs2lab.show_progress()`` prints its phases and
nothing of the commands run meanwhile; root logging at INFO (what the seed script did) prints
a line per command instead. Real commands, run by a script in a process of its own."""

from __future__ import annotations

import sys
import textwrap

import pytest

from ocfs2lab.runner.local import LocalRunner

pytestmark = pytest.mark.integration

SCRIPT = """
import logging
import ocfs2lab
from ocfs2lab.report import LogReporter, phase
from ocfs2lab.runner.local import LocalRunner

{setup}
with phase(LogReporter(), "deploy"), LocalRunner() as runner:
    for _ in range(5):
        runner.run(["true"])
"""


def run_script(setup: str) -> str:
    """The script's standard error, with ``setup`` as its logging set-up."""
    code = textwrap.dedent(SCRIPT).format(setup=setup)
    with LocalRunner() as runner:
        result = runner.run([sys.executable, "-c", code], timeout=120)
    return result.stderr


def test_show_progress_prints_phases_and_no_command_lines() -> None:
    stderr = run_script("ocfs2lab.show_progress()")
    lines = stderr.splitlines()
    assert any(line.endswith(" deploy ...") for line in lines), stderr
    assert any(" deploy done in " in line for line in lines), stderr
    assert len(lines) == 2, stderr  # nothing but the phase


def test_root_logging_at_info_prints_every_command() -> None:
    """The 104 lines of the seed script: each command the library runs, logged at INFO by
    the ``sh`` library. Why examples call show_progress() rather than basicConfig(INFO)."""
    stderr = run_script("logging.basicConfig(level=logging.INFO)")
    assert sum("process started" in line for line in stderr.splitlines()) >= 5, stderr
