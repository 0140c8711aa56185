"""The seed's deployment script, executed as a user runs it: on its own lab VM, with the
coverage of the kernel's OCFS2 code and of the lab's probe in the seed's report layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocfs2lab.coverage import CoverageReport
from tests.support.examples import orphans, probe_line, run_example

pytestmark = pytest.mark.lab


def test_the_seed_deployment_script_runs_and_reports_coverage(tmp_path: Path) -> None:
    before = orphans()
    out = run_example("seed_deployment.py", cwd=tmp_path)
    assert "node 3 reads: hello from node 1" in out
    assert "workload: PASS" in out
    assert "coverage: kernel: " in out and "| tools: " in out
    assert "fsck clean: True" in out
    # The seed's report directory: tests/, kernel_html/, tools_html/.
    (report_dir,) = tmp_path.glob("gcov_reports_*")
    assert (report_dir / "tests" / "results.json").is_file()
    report = CoverageReport.load(report_dir)
    assert report.html("kernel").is_file() and report.html("tools").is_file()
    pages = [p.name for p in report.html("kernel").parent.iterdir()]
    assert any("super.c" in name for name in pages), pages[:20]
    kernel = report["kernel"]
    assert kernel.file("fs/ocfs2/super.c").lines_covered > 0
    assert kernel.under("fs/ocfs2/dlm").lines_covered > 0
    assert kernel.under("fs/ocfs2/cluster").lines_covered > 0
    assert report.targets["kernel"] == ("host",)
    # The probe's lines that ran (write, verify) are covered; statfs and usage are not.
    counts = report.line_counts("tools")["o2probe.c"]
    assert counts[probe_line("wrote %ld blocks")] == 3
    assert counts[probe_line("verified %ld blocks")] == 3
    assert counts[probe_line("if (statfs(path, &st) != 0)")] == 0
    assert counts[probe_line('fprintf(stderr, "usage:')] == 0
    assert orphans() - before == set()
