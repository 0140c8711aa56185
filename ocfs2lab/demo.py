"""The main job: build or reuse the lab image, boot the lab, deploy the seed's cluster, run
the I/O test, check the file system, and tear everything down."""

from __future__ import annotations

import time
from pathlib import Path

from ocfs2lab.cleanup import census
from ocfs2lab.cluster import Cluster
from ocfs2lab.host.labvm import LabVm
from ocfs2lab.report import Reporter, phase
from ocfs2lab.spec.storage import DrbdSpec


def run_demo(
    *,
    reporter: Reporter,
    log_dir: Path | None = None,
    report_root: Path | None = None,
    nodes: int = 3,
) -> dict[str, object]:
    """Run the demonstration and return what it found, in words and numbers.

    Raises:
        Ocfs2LabError: A step failed (everything built is undone first).
    """
    out: dict[str, object] = {}
    root = report_root or Path.cwd()
    started = time.monotonic()
    with LabVm(hostname="ocfs2lab", log_dir=log_dir, reporter=reporter) as host:
        out["lab kernel"] = host.run(["uname", "-r"]).stdout.strip()
        out["DRBD module"] = host.run(["modinfo", "-F", "version", "drbd"]).stdout.strip()
        with Cluster(
            host, nodes, name="ocfs2demo", drbd=DrbdSpec(size="2G"), reporter=reporter
        ) as c:
            status = c.status()
            out["nodes online"] = ", ".join(status.online)
            out["nodes mounted"] = ", ".join(status.mounted)
            out["real kernel nodes"] = f"{status.kernel_nodes} ({status.note[:60]}...)"
            report = c.run_workload(report_root=root)
            out["workload"] = (
                f"{'PASS' if report.ok else 'FAIL'}: "
                f"{sum(len(r.checks) for r in report.results)} checks in {report.seconds:.1f} s"
            )
            out["report directory"] = str(report.report_dir)
            with phase(reporter, "fsck"):
                fsck = c.fsck()
            out["fsck.ocfs2 -fn"] = "clean" if fsck.clean else f"exit {fsck.exit_code}"
        left = census(host, host.docker()).lab_objects()
        out["left on the lab host"] = left or "nothing"
    out["wall time"] = f"{time.monotonic() - started:.1f} s"
    return out
