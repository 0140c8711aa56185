"""Coverage of the lab's kernel code and tools (gcov), in the seed's report layout.

* [`collect`][ocfs2lab.coverage.collect]: [`GcovTree`][ocfs2lab.coverage.tree.GcovTree] (an
  instrumented build on this machine), [`Coverage`][ocfs2lab.coverage.collect.Coverage] (reset,
  read, report for a lab's kernels and tool runners);
* [`report`][ocfs2lab.coverage.report]: [`make_report`][ocfs2lab.coverage.report.make_report] (gcovr
  HTML, JSON, summary) and [`CoverageReport`][ocfs2lab.coverage.report.CoverageReport] (one-line
  summary, notebook table, diff of two runs).

The kernel's data come from the lab kernel ([`ocfs2lab.vm.kernel`][ocfs2lab.vm.kernel], built with
gcov of ``fs/ocfs2`` and ``drivers/block/drbd``); the tools' from programs built with
``--coverage``: the lab's own probe ``o2probe`` in every image, or your ocfs2-tools build.
"""

from ocfs2lab.coverage.collect import Coverage, kernel_tree_of
from ocfs2lab.coverage.report import CoverageReport, make_report
from ocfs2lab.coverage.tree import KERNEL_GCOV, Collected, GcovTree
from ocfs2lab.errors import CoverageError

__all__ = [
    "KERNEL_GCOV",
    "Collected",
    "Coverage",
    "CoverageError",
    "CoverageReport",
    "GcovTree",
    "kernel_tree_of",
    "make_report",
]
