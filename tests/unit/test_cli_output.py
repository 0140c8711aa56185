"""What the command line prints at the end of the main job, at the width of a default
terminal: nothing cut short, every path whole."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from ocfs2lab.cli import LineReporter, _reporting, print_demo_report

ROOT = Path("/home/researcher/experiments/ocfs2lab-checkout-with-a-long-name")
#: What `run_demo` returns, with the long values of a real run.
REPORT: dict[str, object] = {
    "lab kernel": "6.12.117-ocfs2lab",
    "real kernel nodes": "1 (the node containers share the lab VM's kernel: configfs is "
    "global, so the kernel sees one OCFS2 node)",
    "report directory": ROOT / "gcov_reports_20261202_101010",
    "seed: kernel coverage": "9.5% of lines (4040/42661), 13.6% of functions, 89 files",
    "seed: kernel coverage HTML": ROOT / "gcov_reports_20261202_101010/kernel_html/index.html",
    "seed: tools coverage HTML": ROOT / "gcov_reports_20261202_101010/tools_html/index.html",
    "kill: timeline": ROOT / "kill-demo" / "timeline.jsonl",
    "kill: timeline plot": ROOT / "kill-demo" / "timeline.png",
    "kill: DLM recovery end": "13.7 s after the kill (master ocfs2-node-1)",
}
DURATIONS = {"VMs: kill node 3, recover, revive": 98.4, "lab image": 2.1}


def render(width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False)
    print_demo_report(console, REPORT, DURATIONS, 1234.5)
    return out.getvalue()


def test_the_main_jobs_table_cuts_nothing_at_80_columns() -> None:
    text = render(80)
    assert "…" not in text
    table, _, files = text.partition("Files written:")
    assert all(len(line) <= 80 for line in table.splitlines())
    # Every path is whole on a line of its own, to copy (the terminal wraps it, if it must).
    for key, value in REPORT.items():
        if isinstance(value, Path):
            assert f"  {key}: {value}" in files.splitlines()
    words = " ".join(text.replace("│", " ").split())
    for value in REPORT.values():
        if not isinstance(value, Path):
            for word in str(value).split():
                assert word in words or len(word) > 25, word
    assert "time: total" in words and "1234.5 s" in words


def test_the_old_table_would_have_cut_paths() -> None:
    """What the check above guards against: a table cell of a path, at 80 columns."""
    from rich.table import Table  # noqa: PLC0415

    out = io.StringIO()
    table = Table()
    table.add_column("what")
    table.add_column("result")
    table.add_row("kill: timeline plot", str(REPORT["kill: timeline plot"]))
    Console(file=out, width=80, color_system=None).print(table)
    assert str(REPORT["kill: timeline plot"]) not in out.getvalue()


def test_progress_is_plain_lines_when_output_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Piped (CI logs), a long command prints each phase's start and end at once, and its
    progress at most once per interval: no bars, no escape codes."""
    with _reporting() as reporter:
        assert isinstance(reporter, LineReporter)
    lines = LineReporter(interval=0.0)
    lines.phase_started("kernel", total=10)
    lines.advance("kernel", 3, "3 of 10 files")
    lines.phase_ended("kernel", 12.34, True)
    quiet = LineReporter(interval=3600.0)
    quiet.phase_started("image", total=None)
    quiet.advance("image", 1, "debootstrap")  # within the interval: not printed
    quiet.phase_ended("image", 1.0, False)
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "kernel ...",
        "kernel: 3 of 10 files",
        "kernel ok (12.3 s)",
        "image ...",
        "image failed (1.0 s)",
    ]
    assert lines.durations == {"kernel": 12.34} and "\x1b" not in err
