"""Waiting on history workloads in the lab tests."""

from __future__ import annotations

from ocfs2lab.experiment.history import HistoryWorkload
from ocfs2lab.wait import wait_until


def ops_done(work: HistoryWorkload, count: int, *, after: float = 0.0) -> None:
    """Wait until ``work`` has ``count`` acknowledged operations that began after ``after``
    (generous: a survivor's operations wait out a recovery)."""
    wait_until(
        lambda: sum(1 for op in work.history if op.ok and op.invoke >= after) >= count,
        what=f"{count} operations of the {work.spec.workload} workload",
        timeout=300,
        interval=0.5,
    )
