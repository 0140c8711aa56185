"""The examples, executed: the seed's deployment script on its own lab VM (with coverage),
and the kill notebook top to bottom on a real 3-VM cluster."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ocfs2lab.coverage import CoverageReport
from ocfs2lab.vm.qemu import run_root
from ocfs2lab.vm.recipe import PROBE_ASSETS, PROBE_SOURCE
from ocfs2lab.vm.switch import SWITCH_PREFIX

pytestmark = pytest.mark.lab

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _lab_files() -> set[Path]:
    runs = set(run_root().iterdir()) if run_root().is_dir() else set()
    return runs | set(Path(tempfile.gettempdir()).glob(f"{SWITCH_PREFIX}*"))


def probe_line(text: str) -> int:
    lines = (PROBE_ASSETS / PROBE_SOURCE).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_the_seed_deployment_script_runs_and_reports_coverage(tmp_path: Path) -> None:
    before = _lab_files()
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "seed_deployment.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
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
    assert _lab_files() - before == set()


def test_the_kill_notebook_runs(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat", reason="the notebook extra is not installed")
    nbclient = pytest.importorskip("nbclient", reason="the notebook extra is not installed")
    before = _lab_files()
    notebook = nbformat.read(EXAMPLES / "kill_recovery.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=1800,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.append(str(output.get("data", {}).get("text/plain", "")))
    joined = "\n".join(texts)
    assert "kill ocfs2-node-3" in joined and "0 lost" in joined
    assert "recovery_master" in joined  # the runs' table
    assert "journal_replay_end" in joined  # the kernel events' table
    assert (tmp_path / "kill-notebook-results" / "timeline.png").stat().st_size > 10_000
    assert (tmp_path / "kill-notebook-results" / "timeline.jsonl").exists()
    assert "closed" in joined
    # The notebook's cluster left nothing on this machine.
    assert _lab_files() - before == set()
