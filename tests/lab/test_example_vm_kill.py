"""The kill script, executed as a user runs it: a 3-VM cluster of its own, node 3 killed under
load, the recovery on the survivors' kernels, and the recovery code it ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocfs2lab.coverage import CoverageReport
from ocfs2lab.formats.kmsg import EventKind
from ocfs2lab.observe.timeline import Expect, LabEventKind, Timeline
from tests.support.examples import orphans, run_example

pytestmark = pytest.mark.lab


def test_the_vm_kill_script_shows_recovery_in_order_and_its_coverage(tmp_path: Path) -> None:
    """The survivors' kernels, as the script recorded them: connection loss, eviction,
    recovery, journal replay of node 3, in this order; no write lost; and the kernel's DLM
    recovery code ran (the counters were reset before the kill)."""
    before = orphans()
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
    assert CoverageReport.load(out_dir).directory == out_dir / "coverage"  # as the CLI finds it
    assert coverage.targets["kernel"] == (*survivors, "ocfs2-node-3")
    assert coverage["kernel"].file("dlm/dlmrecovery.c").lines_covered > 0
    assert coverage["kernel"].file("journal.c").lines_covered > 0
    assert "dlm/dlmrecovery.c: " in out and "coverage: kernel: " in out
    assert orphans() - before == set()
