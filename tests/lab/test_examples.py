"""The examples, executed: the seed's deployment script on its own lab VM (with coverage),
the kill script and the kill notebook, each on a real 3-VM cluster of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ocfs2lab.coverage import CoverageReport
from ocfs2lab.formats.kmsg import EventKind
from ocfs2lab.observe.timeline import Expect, LabEventKind, Timeline
from ocfs2lab.vm.qemu import run_root
from ocfs2lab.vm.recipe import PROBE_ASSETS, PROBE_SOURCE
from ocfs2lab.vm.switch import SWITCH_PREFIX

pytestmark = pytest.mark.lab

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _owner(path: Path) -> int | None:
    try:
        pid = json.loads(path.read_text()).get("owner_pid")
    except (OSError, ValueError):
        return None  # being made right now, or not the lab's
    return pid if isinstance(pid, int) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _orphans() -> set[Path]:
    """Run and switch directories of lab machines whose owner process is gone: what an
    example that exited would have left behind (other tests' live labs are not counted)."""
    runs = list(run_root().iterdir()) if run_root().is_dir() else []
    switches = list(Path(tempfile.gettempdir()).glob(f"{SWITCH_PREFIX}*"))
    owned = [(d, _owner(d / "state.json")) for d in runs]
    owned += [(d, _owner(d / "owner")) for d in switches]
    return {d for d, pid in owned if pid is not None and not _alive(pid)}


def probe_line(text: str) -> int:
    lines = (PROBE_ASSETS / PROBE_SOURCE).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def run_example(script: str, *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_seed_deployment_script_runs_and_reports_coverage(tmp_path: Path) -> None:
    before = _orphans()
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
    assert _orphans() - before == set()


def test_the_vm_kill_script_shows_recovery_in_order_and_its_coverage(tmp_path: Path) -> None:
    """The survivors' kernels, as the script recorded them: connection loss, eviction,
    recovery, journal replay of node 3, in this order; no write lost; and the kernel's DLM
    recovery code ran (the counters were reset before the kill)."""
    before = _orphans()
    out_dir = tmp_path / "results"
    out = run_example("vm_kill.py", "--out", str(out_dir), cwd=tmp_path)
    (report,) = json.loads((out_dir / "reports.json").read_text())
    survivors = ("ocfs2-node-1", "ocfs2-node-2")
    assert report["victim"] == "ocfs2-node-3" and report["victim_fate"] == "killed"
    assert report["acked_writes"] > 0 and report["lost_writes"] == 0
    assert report["recovery_master"] in survivors
    assert report["fenced"] == ""  # a killed node logs nothing more
    assert report["times"]["detected"] > 0
    timeline = Timeline.load_jsonl(out_dir / "timeline.jsonl")
    (fault,) = timeline.events(LabEventKind.FAULT_INJECTED)
    order = timeline.expect(
        Expect(EventKind.O2NET_LOST, about=3, where=lambda e: e.node in survivors),
        Expect(EventKind.DLM_EVICTED, about=3, where=lambda e: e.node in survivors),
        Expect(EventKind.RECOVERY_BEGIN, about=3, where=lambda e: e.node in survivors),
        Expect(EventKind.RECOVERY_END, where=lambda e: e.node in survivors),
        Expect(EventKind.JOURNAL_REPLAY_BEGIN, about=3, where=lambda e: e.node in survivors),
        Expect(EventKind.JOURNAL_REPLAY_END, about=3, where=lambda e: e.node in survivors),
        after=fault.time,
        timeout=1,  # already recorded
    )
    assert [e.time for e in order] == sorted(e.time for e in order)
    assert (out_dir / "timeline.png").stat().st_size > 10_000
    coverage = CoverageReport.load(out_dir / "coverage")
    assert coverage.targets["kernel"] == (*survivors, "ocfs2-node-3")
    assert coverage["kernel"].file("dlm/dlmrecovery.c").lines_covered > 0
    assert coverage["kernel"].file("journal.c").lines_covered > 0
    assert "dlm/dlmrecovery.c: " in out and "coverage: kernel: " in out
    assert _orphans() - before == set()


def test_the_kill_notebook_runs(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat", reason="the notebook extra is not installed")
    nbclient = pytest.importorskip("nbclient", reason="the notebook extra is not installed")
    before = _orphans()
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
    assert _orphans() - before == set()
