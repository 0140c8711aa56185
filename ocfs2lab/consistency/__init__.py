"""Histories of operations on a shared file system, and the checkers that judge them.

Pure code: a history in, a verdict out. The workloads that record histories on a cluster's
nodes live in [`ocfs2lab.experiment.history`][ocfs2lab.experiment.history].

* [`check_registers`][ocfs2lab.consistency.registers.check_registers]: per-file
  linearizability (files written whole and read from every node).
* [`check_appends`][ocfs2lab.consistency.appends.check_appends]: append logs (prefix, no
  lost acknowledged append, nothing torn, real-time order).
* [`check_mutex`][ocfs2lab.consistency.mutex.check_mutex]: a counter incremented under a
  lock (overlapping critical sections, lost updates).
"""

from ocfs2lab.consistency.appends import check_appends
from ocfs2lab.consistency.history import Anomaly, CheckResult, History, Op, Outcome
from ocfs2lab.consistency.mutex import check_mutex
from ocfs2lab.consistency.registers import check_registers

__all__ = [
    "Anomaly",
    "CheckResult",
    "History",
    "Op",
    "Outcome",
    "check_appends",
    "check_mutex",
    "check_registers",
]
