"""Experiments on a running cluster: faults, and recovery measured from the kernels' logs.

* [`faults`][ocfs2lab.experiment.faults]: kill, freeze, partition and disk stall as restoring
  context managers that record themselves on the timeline.
* [`analysis`][ocfs2lab.experiment.analysis]: what the survivors' kernels did after a fault (pure).
* [`recovery`][ocfs2lab.experiment.recovery]:
  [`RecoveryExperiment`][ocfs2lab.experiment.recovery.RecoveryExperiment], a workload, a fault and a
  typed report, repeated with statistics.
"""

from ocfs2lab.experiment.analysis import RecoveryTimes, analyze_recovery, spread, theory
from ocfs2lab.experiment.faults import DiskStall, Fault, Freeze, Kill, Partition
from ocfs2lab.experiment.recovery import (
    RecoveryExperiment,
    RecoveryReport,
    RecoverySeries,
    report_dict,
)

__all__ = [
    "DiskStall",
    "Fault",
    "Freeze",
    "Kill",
    "Partition",
    "RecoveryExperiment",
    "RecoveryReport",
    "RecoverySeries",
    "RecoveryTimes",
    "analyze_recovery",
    "report_dict",
    "spread",
    "theory",
]
