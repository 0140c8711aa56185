"""The main job: build or reuse the lab kernel and image, boot the lab, deploy the seed's
cluster, run the I/O test and collect its gcov coverage, check the file system, then kill a
node of a 3-VM cluster and report its recovery and the recovery code it ran, and tear
everything down."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from ocfs2lab.cleanup import census
from ocfs2lab.clusters import Cluster, VmCluster
from ocfs2lab.coverage import CoverageReport
from ocfs2lab.coverage.report import NO_DATA_REASON
from ocfs2lab.errors import SpecError
from ocfs2lab.experiment.recovery import RecoveryExperiment
from ocfs2lab.host.labvm import LabVm
from ocfs2lab.report import Prefixed, Reporter, phase
from ocfs2lab.spec.storage import DrbdSpec


def run_demo(
    *,
    reporter: Reporter,
    log_dir: Path | None = None,
    report_root: Path | None = None,
    nodes: int = 3,
    vm_nodes: int = 3,
) -> dict[str, object]:
    """Run the demonstration and return what it found, in words and numbers; the files it
    wrote as `Path` values.

    Args:
        reporter: Receives every phase (the CLI shows them with rich).
        log_dir: Keep the machines' console logs here.
        report_root: Where the workload's report directory and the kill's timeline go
            (default: the current directory).
        nodes: Containers of the seed's deployment.
        vm_nodes: VMs of the kill experiment (0: skip it).

    Raises:
        SpecError: ``vm_nodes`` is 1 or negative, before anything runs.
        Ocfs2LabError: A step failed (everything built is undone first).
    """
    if vm_nodes == 1 or vm_nodes < 0:
        raise SpecError("vm_nodes", vm_nodes, "a kill experiment needs 2 or more VMs (0 skips it)")
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
            out["real kernel nodes"] = f"{status.kernel_nodes} ({status.note})"
            coverage = c.coverage()
            coverage.reset()
            report = c.run_workload(report_root=root)
            out["workload"] = (
                f"{'PASS' if report.ok else 'FAIL'}: "
                f"{sum(len(r.checks) for r in report.results)} checks in {report.seconds:.1f} s"
            )
            for node in c.nodes:
                probe = f"/mnt/ocfs2/o2probe.{node.spec.name}"
                node.run(["o2probe", "write", probe, "64"])
                node.run(["o2probe", "verify", probe, "64"])
            assert report.report_dir is not None
            out["report directory"] = report.report_dir
            with phase(reporter, "coverage report"):
                covered = coverage.report(report.report_dir)
            out.update(_coverage_rows(covered, "seed"))
            with phase(reporter, "fsck"):
                fsck = c.fsck()
            out["fsck.ocfs2 -fn"] = "clean" if fsck.clean else f"exit {fsck.exit_code}"
        left = census(host, host.docker()).lab_objects()
        out["left on the lab host"] = left or "nothing"
    if vm_nodes:
        out.update(_kill_experiment(reporter, log_dir, root, vm_nodes))
    out["wall time"] = f"{time.monotonic() - started:.1f} s"
    return out


def _kill_experiment(
    reporter: Reporter, log_dir: Path | None, root: Path, vm_nodes: int
) -> dict[str, object]:
    """Kill the last node of a VM cluster under load; the recovery figures and files."""
    out: dict[str, object] = {}
    reporter = Prefixed(reporter, "VMs: ")

    def seconds(value: float | None) -> str:
        return "not seen" if value is None else f"{value:.1f} s after the kill"

    cluster = VmCluster(vm_nodes, name="killdemo", log_dir=log_dir, reporter=reporter)
    with cluster:
        status = cluster.status()
        out["VM cluster"] = f"{len(status.nodes)} VMs, {status.kernel_nodes} kernels, mounted"
        out["kernel"] = kernel_line(cluster.kernel_provenance())
        coverage = cluster.coverage()
        coverage.reset()
        with phase(reporter, f"kill node {vm_nodes}, recover, revive"):
            report = RecoveryExperiment(cluster, fault="kill", victim=vm_nodes).run_once()
        t = report.times
        out["kill: detected"] = seconds(t.detected)
        out["kill: evicted"] = seconds(t.evicted)
        out["kill: DLM recovery end"] = f"{seconds(t.recovery_end)} (master {t.recovery_master})"
        out["kill: journal replayed"] = f"{seconds(t.replay_end)} by {t.replayed_by}"
        stalls = [v for v in report.max_stall.values() if v is not None]
        out["kill: longest write stall"] = f"{max(stalls):.1f} s" if stalls else "-"
        out["kill: acknowledged writes"] = (
            f"{report.writes.acknowledged}, lost or torn: {report.lost_writes}"
        )
        directory = root / "kill-demo"
        directory.mkdir(parents=True, exist_ok=True)
        timeline = cluster.timeline.save_jsonl(directory / "timeline.jsonl")
        out["kill: timeline"] = timeline
        try:
            figure = cluster.timeline.plot(
                origin=report.fault_time,
                since=report.fault_time - 5,
                until=report.fault_time + report.duration,
                unknown=False,
                title=f"kill of node {vm_nodes}",
            )
            figure.savefig(directory / "timeline.png")
            out["kill: timeline plot"] = directory / "timeline.png"
        except ImportError as err:  # matplotlib is in the notebook extra
            out["kill: timeline plot"] = f"not drawn: {err}"
        with phase(reporter, "coverage report"):
            covered = coverage.report(directory / "coverage")
        out.update(_coverage_rows(covered, "kill"))
        recovery = covered["kernel"].file("dlm/dlmrecovery.c")
        out["kill: DLM recovery code run"] = (
            f"dlmrecovery.c {recovery.lines_covered}/{recovery.lines_total} lines"
        )
    out["left by the VM cluster"] = _vm_leftovers(cluster)
    return out


def kernel_line(info: Mapping[str, object]) -> str:
    """The kernel a report ran on, in one line: release, key, patches, tree, profile."""
    parts = [str(info.get("release", "?"))]
    if info.get("key"):
        parts.append(f"key {str(info['key'])[:16]}")
    patches = info.get("patches")
    if isinstance(patches, list) and patches:
        parts.append(
            "patches " + ", ".join(f"{p['name']} ({str(p['sha256'])[:12]})" for p in patches)
        )
    tree = info.get("tree")
    if isinstance(tree, dict):
        parts.append(
            f"tree {tree['path']} @ {str(tree['commit'])[:12]}"
            + (" (dirty)" if tree.get("dirty") else "")
        )
    if info.get("profile"):
        parts.append(f"profile {info['profile']}")
    return ", ".join(parts)


def _coverage_rows(report: CoverageReport, label: str) -> dict[str, object]:
    """One row per coverage report (kernel, tools) and one per HTML index; a build without
    data says so."""
    rows: dict[str, object] = {}
    for name, summary in report.summaries.items():
        t = summary.total
        rows[f"{label}: {name} coverage"] = (
            f"{t.lines_percent}% of lines ({t.lines_covered}/{t.lines_total}), "
            f"{t.functions_percent}% of functions, {len(summary.files)} files"
        )
    for name in report.no_data:
        rows[f"{label}: {name} coverage"] = f"no data ({NO_DATA_REASON})"
    for name in report.summaries:
        if report.has_html(name):
            rows[f"{label}: {name} coverage HTML"] = report.html(name)
    return rows


def _vm_leftovers(cluster: VmCluster) -> str:
    """What the VM cluster left on this machine: its files and processes (none expected)."""
    left = []
    if cluster.work_dir is not None and cluster.work_dir.exists():
        left.append(str(cluster.work_dir))
    if cluster.switch is not None and cluster.switch.running:
        left.append(f"switch pid {cluster.switch.pid}")
    left += [vm.spec.name for vm in cluster.vms if vm.running]
    return ", ".join(left) or "nothing"
