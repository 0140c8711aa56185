"""The tools' coverage path on this machine, for real: the lab's probe compiled with gcov,
run with ``GCOV_PREFIX`` as the guests set it, its data read by the guests' dump script, and a
report made by gcovr. The same path runs in containers and VM nodes in the lab tests.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from ocfs2lab.coverage import Collected, Coverage, CoverageError, CoverageReport, GcovTree
from ocfs2lab.coverage.report import make_report, parse_gcov_version
from ocfs2lab.runner.base import CommandResult
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.vm.image import compile_probe
from ocfs2lab.vm.kernel import find_kernel
from ocfs2lab.vm.recipe import ImageRecipe

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> GcovTree:
    if shutil.which("gcc") is None or shutil.which("gcov") is None:
        pytest.skip("gcc is not installed")
    build = tmp_path_factory.mktemp("probe-build") / "tools-gcov"
    compile_probe(build)
    return GcovTree.of_build(build, name="tools")


def run_probe(probe: GcovTree, prefix: Path, *args: str) -> int:
    local = LocalRunner()
    result = local.run(
        [str(probe.tree / "o2probe"), *args],
        check=False,
        env={"GCOV_PREFIX": str(prefix)},
        timeout=60,
    )
    return result.exit_code


def report_of(probe: GcovTree, prefix: Path, out: Path, **options: Any) -> CoverageReport:
    tree = GcovTree(
        name="tools", tree=probe.tree, build_root=probe.build_root, guest_root=str(prefix)
    )
    coverage = Coverage(None, {}, (tree,), {"here": LocalRunner()})
    return coverage.report(out, **options)


def lines_of(report: CoverageReport) -> dict[int, int]:
    return report.line_counts("tools")["o2probe.c"]


def source_line(probe: GcovTree, text: str) -> int:
    lines = (probe.tree / "o2probe.c").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_the_lines_that_ran_are_covered_and_the_others_not(probe: GcovTree, tmp_path: Path) -> None:
    prefix = tmp_path / "guest-gcov"
    data = tmp_path / "file"
    assert run_probe(probe, prefix, "write", str(data), "4") == 0
    assert run_probe(probe, prefix, "verify", str(data), "4") == 0
    # The data went under GCOV_PREFIX, at the build's path: nothing in the build tree.
    assert list(prefix.rglob("o2probe.gcda"))
    assert not list(probe.tree.glob("*.gcda"))

    report = report_of(probe, prefix, tmp_path / "gcov_reports_1")
    assert report.has_html("tools") and report.html("tools").is_file()
    assert "o2probe.c" in report.html("tools").read_text()
    counts = lines_of(report)
    assert counts[source_line(probe, "wrote %ld blocks")] == 1
    assert counts[source_line(probe, "verified %ld blocks")] == 1
    assert counts[source_line(probe, "if (statfs(path, &st) != 0)")] == 0
    assert counts[source_line(probe, 'fprintf(stderr, "usage:')] == 0
    summary = report["tools"]
    assert 0 < summary.total.lines_covered < summary.total.lines_total
    assert report.targets == {"tools": ("here",)}
    meta = json.loads((report.directory / "coverage.json").read_text())
    assert meta["reports"] == ["tools"]
    assert CoverageReport.load(report.directory).summaries == report.summaries
    assert "tools: " in report.one_line()
    assert not (report.directory / ".work").exists()

    # Reset, then another workload: other lines, and the diff says which.
    Coverage(
        None,
        {},
        (
            GcovTree(
                name="tools", tree=probe.tree, build_root=probe.build_root, guest_root=str(prefix)
            ),
        ),
        {"here": LocalRunner()},
    ).reset()
    assert not prefix.exists()
    assert run_probe(probe, prefix, "statfs", str(tmp_path)) == 1  # not ocfs2 here
    second = report_of(probe, prefix, tmp_path / "gcov_reports_2", html=False)
    # Without HTML: the JSON files only, and a clear error for the pages.
    assert not (second.directory / "tools_html").exists() and not second.has_html("tools")
    with pytest.raises(CoverageError, match="no HTML report of 'tools'"):
        second.html("tools")
    counts2 = lines_of(second)
    assert counts2[source_line(probe, "if (statfs(path, &st) != 0)")] == 1
    assert counts2[source_line(probe, "wrote %ld blocks")] == 0
    assert second["tools"].total.lines_covered != summary.total.lines_covered
    diff = report.diff(second, "tools")
    assert source_line(probe, "wrote %ld blocks") in diff.only_a["o2probe.c"]
    assert source_line(probe, "if (statfs(path, &st) != 0)") in diff.only_b["o2probe.c"]
    table = report.table()
    assert list(table["file"]) == ["o2probe.c", "TOTAL"]


def test_no_data_and_a_gcov_of_another_gcc_are_refused(probe: GcovTree, tmp_path: Path) -> None:
    empty = make_report(Collected({}), [probe], tmp_path / "r")
    assert empty.summaries == {}
    assert empty.one_line() == "tools: no data (nothing instrumented ran since the reset)"
    assert make_report(Collected({}), [], tmp_path / "r0").one_line() == "no coverage data"
    foreign = GcovTree(
        name="kernel", tree=probe.tree, build_root=probe.build_root, gcc_version="99.1.0"
    )
    with pytest.raises(CoverageError, match=r"GCC 99\.1\.0"):
        make_report(Collected({}), [foreign], tmp_path / "r2")
    with pytest.raises(CoverageError, match="nothing to measure"):
        Coverage(None, {}).check()


def test_the_gcov_version_is_read_from_its_banner() -> None:
    assert parse_gcov_version("gcov (Debian 12.2.0-14+deb12u1) 12.2.0\nCopyright (C) 2022\n") == (
        "12.2.0"
    )
    assert parse_gcov_version("gcov (GCC) 14.2.0") == "14.2.0"
    assert parse_gcov_version("") is None


def test_the_lab_kernels_notes_report_every_profiled_file(tmp_path: Path) -> None:
    """gcovr on the lab kernel's kept tree, as reports run it: every profiled source file
    (fs/ocfs2, drivers/block/drbd, and whatever else the recipe profiles) is there
    (uncovered: no data), nothing else."""
    recipe = ImageRecipe().kernel
    kernel = find_kernel(recipe) if recipe is not None else None
    if kernel is None:
        pytest.skip("the lab kernel is not built here (ocfs2lab image build)")
    tree = GcovTree.of_kernel(kernel)
    report = make_report(Collected({"kernel": {"none": {}}}), [tree], tmp_path, keep_empty=True)
    files = [f.path for f in report["kernel"].files]
    assert "fs/ocfs2/super.c" in files and "fs/ocfs2/dlm/dlmrecovery.c" in files
    assert "drivers/block/drbd/drbd_main.c" in files
    assert all(f.startswith(tuple(f"{d}/" for d in tree.report_dirs)) for f in files)
    assert report["kernel"].total.lines_total > 10_000
    assert report["kernel"].total.lines_covered == 0


def cli(*args: str | Path) -> CommandResult:
    with LocalRunner() as runner:
        return runner.run(
            [str(Path(sys.executable).parent / "ocfs2lab"), *map(str, args)],
            check=False,
            timeout=120,
            env={"COLUMNS": "200", "NO_COLOR": "1"},
        )


def test_coverage_diff_of_two_example_output_folders(probe: GcovTree, tmp_path: Path) -> None:
    """`examples/vm_kill.py --out run1` writes its report to run1/coverage/: the command line
    finds it there, and names the two sides by the folders that tell them apart."""
    prefix = tmp_path / "guest-gcov"
    assert run_probe(probe, prefix, "write", str(tmp_path / "file"), "4") == 0
    report_of(probe, prefix, tmp_path / "run1" / "coverage", html=False)
    shutil.rmtree(prefix)
    assert run_probe(probe, prefix, "statfs", str(tmp_path)) == 1
    report_of(probe, prefix, tmp_path / "run2" / "coverage", html=False)

    result = cli("coverage", "diff", tmp_path / "run1", tmp_path / "run2", "--name", "tools")
    assert result.ok, result
    lines = result.stdout.splitlines()  # the output, to redirect: stdout
    assert lines[:2] == ["A: run1/coverage", "B: run2/coverage"], lines
    assert any(ln.startswith("only in A (run1/coverage): ") for ln in lines)
    assert any(ln.startswith("only in B (run2/coverage): ") for ln in lines)
    assert "only coverage" not in result.stdout + result.stderr

    shown = cli("coverage", "show", tmp_path / "run1")
    assert shown.ok and "tools: " in shown.stdout, shown
    assert f"report: {tmp_path / 'run1' / 'coverage'}" in shown.stdout
    # A folder with no report, and one with two: each says what it found.
    (tmp_path / "empty").mkdir()
    nothing = cli("coverage", "show", tmp_path / "empty")
    assert nothing.exit_code == 1 and "holds no coverage report" in nothing.stderr
    assert CoverageReport.load(tmp_path / "run1").directory == tmp_path / "run1" / "coverage"
    shutil.copytree(tmp_path / "run1" / "coverage", tmp_path / "both" / "first")
    shutil.copytree(tmp_path / "run2" / "coverage", tmp_path / "both" / "second")
    with pytest.raises(CoverageError, match="2 of its subfolders do: first, second"):
        CoverageReport.load(tmp_path / "both")
    first = CoverageReport.load(tmp_path / "both" / "first")
    assert first.summaries == CoverageReport.load(tmp_path / "run1").summaries
    assert first.summaries["tools"].total.lines_covered > 0
    # The same folder twice: the same label, as A and as B, and nothing only in one.
    same = cli("coverage", "diff", tmp_path / "run1", tmp_path / "run1", "--name", "tools")
    assert same.ok and same.stdout.splitlines()[:4] == [
        "A: run1/coverage",
        "B: run1/coverage",
        "only in A (run1/coverage): 0 lines in 0 files",
        "only in B (run1/coverage): 0 lines in 0 files",
    ]


def test_a_tool_that_never_ran_is_named_in_the_summary(probe: GcovTree, tmp_path: Path) -> None:
    """The README's coverage example without its probe step made no tools report and said so
    only in a log line: the report says it in its summary line too."""
    report = report_of(probe, tmp_path / "nothing-ran", tmp_path / "r")
    assert report.summaries == {} and report.no_data == ("tools",)
    assert report.one_line() == "tools: no data (nothing instrumented ran since the reset)"
    assert CoverageReport.load(tmp_path / "r").no_data == ("tools",)
