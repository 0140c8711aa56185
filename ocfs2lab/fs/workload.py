"""The seed's ``run_tests``: every node writes, fsyncs and reads back its own files, then reads
every other node's files, all verified by content checksums.

The content of each file is derived from (node, index), so any node can verify any file
without the writer's copy. Per-node logs and a JSON summary go to a report directory on the
caller's machine (``gcov_reports_YYYYMMDD_HHMMSS/tests/`` in the seed's layout).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from attrs import asdict, define, field, frozen

from ocfs2lab.errors import Ocfs2LabError
from ocfs2lab.node.base import Node
from ocfs2lab.parallel import run_parallel

log = logging.getLogger(__name__)


def file_content(node: str, index: int, size: int) -> bytes:
    """The deterministic content of file ``index`` of ``node``."""
    seed = hashlib.sha256(f"ocfs2lab:{node}:{index}".encode()).digest()
    block = hashlib.sha256(seed).digest() * 128  # 4 KiB
    whole, rest = divmod(size, len(block))
    return block * whole + block[:rest]


def report_dir_name(now: _dt.datetime | None = None) -> str:
    """``gcov_reports_YYYYMMDD_HHMMSS``, the seed's report directory name."""
    return f"gcov_reports_{(now or _dt.datetime.now()).strftime('%Y%m%d_%H%M%S')}"


@frozen
class Check:
    """One verified (or failed) file operation."""

    node: str
    op: str  # write | readback | read-other
    path: str
    ok: bool
    seconds: float
    detail: str = ""


@define
class NodeResult:
    """What one node did."""

    node: str
    checks: list[Check] = field(factory=list)

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return bool(self.checks) and all(c.ok for c in self.checks)


@define
class WorkloadReport:
    """The workload's outcome on every node.

    Attributes:
        results: Per node, every check.
        report_dir: Where logs and ``results.json`` were written, if anywhere.
        seconds: Wall time of the whole workload.
    """

    results: list[NodeResult]
    report_dir: Path | None
    seconds: float

    @property
    def ok(self) -> bool:
        """Every node passed every check."""
        return bool(self.results) and all(r.ok for r in self.results)

    @property
    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [c for r in self.results for c in r.checks if not c.ok]

    def raise_if_failed(self) -> None:
        """Raise when any check failed.

        Raises:
            Ocfs2LabError: Names the failed checks.
        """
        if not self.ok:
            shown = "; ".join(f"{c.node} {c.op} {c.path}: {c.detail}" for c in self.failures[:8])
            raise Ocfs2LabError(
                f"workload failed {len(self.failures)} check(s): {shown}",
                hint=f"see the per-node logs in {self.report_dir}" if self.report_dir else None,
            )


class SharedIoWorkload:
    """Write/fsync/read-back on every node at once, then cross-node reads.

    Args:
        files_per_node: Files each node writes.
        file_size: Bytes per file.
        directory: Sub-directory of the mount point used by the workload.
    """

    def __init__(
        self, files_per_node: int = 4, file_size: int = 1 << 20, directory: str = "ocfs2lab-io"
    ) -> None:
        self.files_per_node = files_per_node
        self.file_size = file_size
        self.directory = directory

    def path(self, mount_point: str, node: str, index: int) -> str:
        """Where node ``node`` writes file ``index``."""
        return f"{mount_point}/{self.directory}/{node}/file{index:03d}"

    def expected_sha(self, node: str, index: int) -> str:
        """The sha256 the file must have."""
        return hashlib.sha256(file_content(node, index, self.file_size)).hexdigest()

    def run(
        self, nodes: Sequence[Node], mount_point: str, report_root: Path | None = None
    ) -> WorkloadReport:
        """Run the workload on all nodes concurrently (writes first, then cross reads).

        Args:
            nodes: The mounted nodes.
            mount_point: Where the volume is mounted on each node.
            report_root: Where ``<report dir>/tests/`` is created; no files when ``None``.

        Returns:
            The per-node checks; see
            [`WorkloadReport.raise_if_failed`][ocfs2lab.fs.workload.WorkloadReport.raise_if_failed].
        """
        started = time.monotonic()
        results = {n.spec.name: NodeResult(n.spec.name) for n in nodes}
        writes = run_parallel(nodes, lambda n: self._write_own(n, mount_point))
        for node, checks in writes.done:
            results[node.spec.name].checks.extend(checks)
        for node, err in writes.failed:
            results[node.spec.name].checks.append(
                Check(node.spec.name, "write", mount_point, False, 0.0, str(err))
            )
        names = [n.spec.name for n in nodes]
        reads = run_parallel(nodes, lambda n: self._read_others(n, mount_point, names))
        for node, checks in reads.done:
            results[node.spec.name].checks.extend(checks)
        for node, err in reads.failed:
            results[node.spec.name].checks.append(
                Check(node.spec.name, "read-other", mount_point, False, 0.0, str(err))
            )
        report = WorkloadReport(list(results.values()), None, time.monotonic() - started)
        if report_root is not None:
            report.report_dir = self.write_report(report, report_root)
        return report

    def _write_own(self, node: Node, mount_point: str) -> list[Check]:
        name = node.spec.name
        checks: list[Check] = []
        node.run(["mkdir", "-p", f"{mount_point}/{self.directory}/{name}"], timeout=120)
        for i in range(self.files_per_node):
            path = self.path(mount_point, name, i)
            t0 = time.monotonic()
            res = node.run(
                ["dd", f"of={path}", "bs=1M", "conv=fsync", "status=none"],
                input=file_content(name, i, self.file_size),
                check=False,
                timeout=300,
            )
            checks.append(Check(name, "write", path, res.ok, time.monotonic() - t0, res.stderr))
        return checks + self._verify(
            node, "readback", [(name, i) for i in range(self.files_per_node)], mount_point
        )

    def _read_others(self, node: Node, mount_point: str, names: Sequence[str]) -> list[Check]:
        files = [(o, i) for o in names if o != node.spec.name for i in range(self.files_per_node)]
        return self._verify(node, "read-other", files, mount_point) if files else []

    def _verify(
        self, node: Node, op: str, files: Sequence[tuple[str, int]], mount_point: str
    ) -> list[Check]:
        """Checksum ``files`` (writer node, index) on ``node`` in one command."""
        paths = [self.path(mount_point, owner, i) for owner, i in files]
        t0 = time.monotonic()
        res = node.run(["sha256sum", "--", *paths], check=False, timeout=600)
        seconds = (time.monotonic() - t0) / max(1, len(paths))
        got: dict[str, str] = {}
        for line in res.stdout.splitlines():
            digest, _, path = line.partition("  ")
            got[path] = digest
        checks = []
        for (owner, i), path in zip(files, paths, strict=True):
            want = self.expected_sha(owner, i)
            have = got.get(path, "")
            detail = "" if have == want else f"sha256 {have or 'unreadable'} != {want}"
            checks.append(Check(node.spec.name, op, path, have == want, seconds, detail))
        return checks

    def write_report(self, report: WorkloadReport, root: Path) -> Path:
        """Write ``tests/<node>.log`` and ``tests/results.json`` under a new report dir."""
        base = Path(root) / report_dir_name()
        tests = base / "tests"
        tests.mkdir(parents=True, exist_ok=True)
        for r in report.results:
            lines = [
                f"{'PASS' if c.ok else 'FAIL'} {c.op:10s} {c.path} "
                f"{c.seconds * 1000:.0f} ms {c.detail}".rstrip()
                for c in r.checks
            ]
            (tests / f"{r.node}.log").write_text("\n".join(lines) + "\n")
        summary = {
            "ok": report.ok,
            "seconds": report.seconds,
            "files_per_node": self.files_per_node,
            "file_size": self.file_size,
            "nodes": {r.node: [asdict(c) for c in r.checks] for r in report.results},
        }
        (tests / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
        return base
