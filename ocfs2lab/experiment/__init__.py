"""Experiments on a running cluster: faults, and recovery measured from the kernels' logs.

* [`faults`][ocfs2lab.experiment.faults]: kill, freeze, partition and disk stall, partitions
  of any shape, a degraded link, a clock step, several at once, and faults fired by a
  timeline event, as restoring context managers that record themselves on the timeline.
* [`analysis`][ocfs2lab.experiment.analysis]: what the survivors' kernels did after a fault (pure).
* [`recovery`][ocfs2lab.experiment.recovery]:
  [`RecoveryExperiment`][ocfs2lab.experiment.recovery.RecoveryExperiment], a workload, a fault and a
  typed report, repeated with statistics; and
  [`ExperimentCluster`][ocfs2lab.experiment.recovery.ExperimentCluster], what it needs of a
  cluster.
* [`compare`][ocfs2lab.experiment.compare]: two arms (kernels) compared figure by figure, with
  confidence intervals.
* [`history`][ocfs2lab.experiment.history]: history workloads (registers, append logs,
  counters under flock or fcntl) whose operations the checkers of
  [`ocfs2lab.consistency`][ocfs2lab.consistency.history] judge.
* [`nemesis`][ocfs2lab.experiment.nemesis]: a seeded fault schedule run against history
  workloads, then healed, read back and checked.

This layer sits above `fs`, `node` and `observe` and below the clusters: a fault asks a node
for a capability, an experiment asks a cluster for a small protocol.
"""

from ocfs2lab.experiment.analysis import RecoveryTimes, analyze_recovery, spread, theory
from ocfs2lab.experiment.compare import Comparison, FigureComparison
from ocfs2lab.experiment.faults import (
    FAULTS,
    ClockStep,
    DegradedLink,
    DiskStall,
    Fault,
    FaultName,
    Freeze,
    Kill,
    Partition,
    Split,
    Together,
    Trigger,
)
from ocfs2lab.experiment.history import HistoryWorkload
from ocfs2lab.experiment.nemesis import ExecutedFault, Nemesis, NemesisRun, make_whole
from ocfs2lab.experiment.recovery import (
    ExperimentCluster,
    RecoveryExperiment,
    RecoveryReport,
    RecoverySeries,
    report_dict,
)

__all__ = [
    "FAULTS",
    "ClockStep",
    "Comparison",
    "DegradedLink",
    "DiskStall",
    "ExecutedFault",
    "ExperimentCluster",
    "Fault",
    "FaultName",
    "FigureComparison",
    "Freeze",
    "HistoryWorkload",
    "Kill",
    "Nemesis",
    "NemesisRun",
    "Partition",
    "RecoveryExperiment",
    "RecoveryReport",
    "RecoverySeries",
    "RecoveryTimes",
    "Split",
    "Together",
    "Trigger",
    "analyze_recovery",
    "make_whole",
    "report_dict",
    "spread",
    "theory",
]
