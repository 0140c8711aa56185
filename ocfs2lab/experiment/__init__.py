"""Experiments on a running cluster: faults, and recovery measured from the kernels' logs.

* [`faults`][ocfs2lab.experiment.faults]: kill, freeze, partition and disk stall as restoring
  context managers that record themselves on the timeline.
* [`analysis`][ocfs2lab.experiment.analysis]: what the survivors' kernels did after a fault (pure).
* [`recovery`][ocfs2lab.experiment.recovery]:
  [`RecoveryExperiment`][ocfs2lab.experiment.recovery.RecoveryExperiment], a workload, a fault and a
  typed report, repeated with statistics; and
  [`ExperimentCluster`][ocfs2lab.experiment.recovery.ExperimentCluster], what it needs of a
  cluster.
* [`compare`][ocfs2lab.experiment.compare]: two arms (kernels) compared figure by figure, with
  confidence intervals.

This layer sits above `fs`, `node` and `observe` and below the clusters: a fault asks a node
for a capability, an experiment asks a cluster for a small protocol.
"""

from ocfs2lab.experiment.analysis import RecoveryTimes, analyze_recovery, spread, theory
from ocfs2lab.experiment.compare import Comparison, FigureComparison
from ocfs2lab.experiment.faults import FAULTS, DiskStall, Fault, FaultName, Freeze, Kill, Partition
from ocfs2lab.experiment.recovery import (
    ExperimentCluster,
    RecoveryExperiment,
    RecoveryReport,
    RecoverySeries,
    report_dict,
)

__all__ = [
    "FAULTS",
    "Comparison",
    "DiskStall",
    "ExperimentCluster",
    "Fault",
    "FaultName",
    "FigureComparison",
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
