"""Coverage reports in the seed's layout, made with gcovr.

[`make_report`][ocfs2lab.coverage.report.make_report] turns
[`Collected`][ocfs2lab.coverage.tree.Collected] data into a report directory
(``gcov_reports_YYYYMMDD_HHMMSS/`` in the seed's layout; ``tests/`` is written by the workload):

* ``<name>_html/index.html``: gcovr's HTML with every source file (``kernel_html/``,
  ``tools_html/``), all targets merged (counts of several kernels are added up);
* ``<name>.json``: gcovr's line report (every line's count: what
  [`CoverageReport.diff`][ocfs2lab.coverage.report.CoverageReport.diff] compares);
* ``<name>_summary.json``: gcovr's summary (lines, functions, branches per file and in total);
* ``<name>_summary.<target>.json``: the same for each target alone;
* ``coverage.json``: the lab's summary of all of it, with the targets and file counts.

Each target's data are placed in a hard-linked copy of the build tree, gcovr runs ``gcov``
there (its own JSON trace per target), and the traces are merged. The ``gcov`` must be of
the GCC that compiled the build: a mismatch is refused before gcov prints nonsense.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from ocfs2lab.coverage.tree import Collected, GcovTree
from ocfs2lab.errors import CoverageError
from ocfs2lab.formats.gcovr import (
    CoverageDiff,
    CoverageSummary,
    diff_line_counts,
    parse_line_counts,
    parse_summary,
)
from ocfs2lab.observe.export import require_module
from ocfs2lab.runner.local import LocalRunner

log = logging.getLogger(__name__)

#: The lab's own summary file in a report directory.
SUMMARY_FILE = "coverage.json"
#: Seconds one gcovr run may take (the kernel's ocfs2 tree takes well under a minute).
GCOVR_TIMEOUT = 1800.0


@frozen
class CoverageReport:
    """A written coverage report.

    Attributes:
        directory: The report directory.
        summaries: ``{name: summary}`` (``kernel``, ``tools``, ...), merged over targets.
        targets: ``{name: [targets whose data it holds]}``.
        gcda_files: ``{name: number of .gcda files read}``.
        provenance: ``{name: what the build was made of}``: for the lab kernel its release,
            recipe key, patches, tree commit and profile.
        no_data: The builds asked for that no target had data of, so not reported: the
            tools' report when no instrumented program ran since the reset (run ``o2probe``
            on the nodes, as `examples/seed_deployment.py` does).
    """

    directory: Path
    summaries: dict[str, CoverageSummary]
    targets: dict[str, tuple[str, ...]]
    gcda_files: dict[str, int]
    provenance: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    no_data: tuple[str, ...] = ()

    def html(self, name: str) -> Path:
        """The HTML index of report ``name`` (``kernel_html/index.html``).

        Raises:
            CoverageError: The report has no such HTML (unknown name, or made with
                ``html=False``).
        """
        index = self._html_index(name)
        if not index.is_file():
            raise CoverageError(
                f"{self.directory} has no HTML report of {name!r} (reports: "
                f"{', '.join(self.summaries) or 'none'})",
                hint="make the report with html=True (the default)",
            )
        return index

    def has_html(self, name: str) -> bool:
        """Whether report ``name`` has its HTML pages."""
        return self._html_index(name).is_file()

    def _html_index(self, name: str) -> Path:
        return self.directory / f"{name}_html" / "index.html"

    def __getitem__(self, name: str) -> CoverageSummary:
        return self.summaries[name]

    def one_line(self) -> str:
        """One line per report, joined: ``kernel: 9.8% of lines (...) | tools: ...``; a
        build without data says so (``tools: no data (nothing instrumented ran since the
        reset)``)."""
        parts = [s.one_line() for s in self.summaries.values()]
        parts += [f"{name}: no data ({NO_DATA_REASON})" for name in self.no_data]
        return " | ".join(parts) if parts else "no coverage data"

    def rows(self) -> list[dict[str, Any]]:
        """Every file of every report as table rows (``report`` column first)."""
        rows = []
        for name, summary in self.summaries.items():
            for row in summary.rows():
                rows.append({"report": name, **row})
        return rows

    def table(self, name: str | None = None, *, top: int | None = None) -> Any:
        """A pandas DataFrame of the files (of report ``name``, or all), most lines first.

        Needs pandas (``pip install ocfs2lab[notebook]``).
        """
        pd = require_module("pandas", "pandas", "CoverageReport.table")
        rows = [r for r in self.rows() if name is None or r["report"] == name]
        frame = pd.DataFrame(rows)
        if frame.empty:
            return frame
        files = frame[frame["file"] != "TOTAL"].sort_values("lines", ascending=False)
        if top is not None:
            files = files.head(top)
        return pd.concat([files, frame[frame["file"] == "TOTAL"]], ignore_index=True)

    def _repr_html_(self) -> str:
        return str(self.table().to_html(index=False))

    def line_counts(self, name: str) -> dict[str, dict[int, int]]:
        """Every line's execution count in report ``name`` (from ``<name>.json``)."""
        return parse_line_counts((self.directory / f"{name}.json").read_text())

    def diff(
        self,
        other: CoverageReport,
        name: str = "kernel",
        *,
        labels: tuple[str, str] | None = None,
    ) -> CoverageDiff:
        """Lines this run reached that ``other`` did not (``only_a``), and the reverse.

        Args:
            other: Run B.
            name: Which report (``kernel``, ``tools``, ...).
            labels: Names of the two runs; by default the shortest ends of the two report
                directories' paths that tell them apart (``run1/coverage`` and
                ``run2/coverage``, not ``coverage`` twice).

        Raises:
            CoverageError: One of the reports has no ``name`` report.
        """
        for report in (self, other):
            if not (report.directory / f"{name}.json").is_file():
                raise CoverageError(
                    f"{report.directory} has no {name!r} report (reports: "
                    f"{', '.join(report.summaries) or 'none'})",
                    hint="pass --name with one of them" if report.summaries else None,
                )
        return diff_line_counts(
            self.line_counts(name),
            other.line_counts(name),
            labels=labels or distinct_labels(self.directory, other.directory),
        )

    @classmethod
    def load(cls, directory: str | Path) -> CoverageReport:
        """The report written in ``directory``, or in its ``coverage/`` subfolder (where
        `examples/vm_kill.py` and `ocfs2lab demo` put it), or in the one subfolder of it that
        holds a report.

        Raises:
            CoverageError: Neither ``directory`` nor a subfolder holds a report, or several
                subfolders do (it names them).
        """
        path = find_report(Path(directory))
        try:
            meta = json.loads((path / SUMMARY_FILE).read_text())
        except (OSError, ValueError) as err:
            raise CoverageError(f"{path} holds no coverage report: {err}") from err
        summaries = {
            name: parse_summary((path / f"{name}_summary.json").read_text(), name)
            for name in meta["reports"]
        }
        return cls(
            directory=path,
            summaries=summaries,
            targets={k: tuple(v) for k, v in meta["targets"].items()},
            gcda_files=dict(meta["gcda_files"]),
            provenance=dict(meta.get("provenance") or {}),
            no_data=tuple(meta.get("no_data") or ()),
        )


#: Why a build can have no data, as `CoverageReport.one_line` says it.
NO_DATA_REASON = "nothing instrumented ran since the reset"


def find_report(directory: Path) -> Path:
    """The report directory at or under ``directory``: itself, its ``coverage/`` subfolder,
    or its only subfolder holding a report.

    Raises:
        CoverageError: No report there, or several subfolders with one (named, to choose).
    """
    if (directory / SUMMARY_FILE).is_file():
        return directory
    if (directory / "coverage" / SUMMARY_FILE).is_file():
        return directory / "coverage"
    if not directory.is_dir():
        raise CoverageError(f"{directory} holds no coverage report: no such directory")
    found = sorted(p.parent for p in directory.glob(f"*/{SUMMARY_FILE}"))
    if len(found) == 1:
        return found[0]
    if found:
        raise CoverageError(
            f"{directory} holds no coverage report itself, and {len(found)} of its subfolders "
            f"do: {', '.join(p.name for p in found)}",
            hint="name one of them",
        )
    raise CoverageError(
        f"{directory} holds no coverage report (no {SUMMARY_FILE} in it, in its coverage/ "
        "subfolder or in any other subfolder)",
        hint="give the directory Coverage.report() wrote",
    )


def distinct_labels(a: Path, b: Path) -> tuple[str, str]:
    """Labels for two report directories: the shortest ends of their paths that differ
    (``run1/coverage`` and ``run2/coverage``); a folder named ``coverage`` keeps its parent's
    name (``vm-kill-results/coverage``). The same directory twice has the same label twice
    ([`CoverageDiff.render`][ocfs2lab.formats.gcovr.CoverageDiff.render] calls them A and B).
    """
    pa, pb = a.resolve().parts, b.resolve().parts

    def start(parts: tuple[str, ...]) -> int:
        return 2 if parts[-1] == "coverage" and len(parts) > 2 else 1

    ka, kb = start(pa), start(pb)
    if pa == pb:
        return "/".join(pa[-ka:]), "/".join(pb[-kb:])
    while "/".join(pa[-ka:]) == "/".join(pb[-kb:]) and (ka < len(pa) or kb < len(pb)):
        ka, kb = min(ka + 1, len(pa)), min(kb + 1, len(pb))
    return "/".join(pa[-ka:]), "/".join(pb[-kb:])


def gcov_major(version: str) -> str:
    """``12`` of ``12.2.0``."""
    return version.strip().split(".")[0]


def parse_gcov_version(text: str) -> str | None:
    """The version of ``gcov --version`` output: ``12.2.0`` of
    ``gcov (Debian 12.2.0-14+deb12u1) 12.2.0``."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    match = re.search(r"(\d+\.\d+(?:\.\d+)?)\s*$", first)
    return match.group(1) if match else None


def check_gcov(trees: Sequence[GcovTree], gcov: str, local: LocalRunner) -> None:
    """Refuse a ``gcov`` of another GCC than the one that built a tree."""
    if shutil.which(gcov) is None:
        raise CoverageError(f"{gcov} is not installed", hint="apt-get install gcc")
    result = local.run([gcov, "--version"], check=False, timeout=60)
    have = parse_gcov_version(result.stdout)
    if have is None:
        raise CoverageError(f"cannot tell the version of {gcov}: {result.stdout[:200]!r}")
    for tree in trees:
        if tree.gcc_version and gcov_major(tree.gcc_version) != gcov_major(have):
            major = gcov_major(tree.gcc_version)
            raise CoverageError(
                f"{tree.name} was built by GCC {tree.gcc_version}, {gcov} is {have}: "
                "gcov reads only the data of its own GCC",
                hint=f"apt-get install gcc-{major} and pass gcov='gcov-{major}'",
            )


def _gcovr(local: LocalRunner, args: Sequence[str], what: str) -> None:
    argv = [sys.executable, "-m", "gcovr", *args]
    result = local.run(argv, check=False, timeout=GCOVR_TIMEOUT)
    if not result.ok:
        if "No module named gcovr" in result.stderr:
            raise CoverageError("gcovr is not installed", hint="pip install 'ocfs2lab[coverage]'")
        raise CoverageError(
            f"gcovr ({what}) exited with {result.exit_code}: {result.stderr.strip()[-1500:]}"
        )


def _filters(tree: GcovTree, root: Path) -> list[str]:
    """gcovr ``--filter`` options for the tree's report directories (absolute: gcovr takes
    a relative filter as relative to its working directory, not to ``--root``)."""
    args: list[str] = []
    for directory in tree.report_dirs:
        args += ["--filter", re.escape(f"{root.resolve()}/{directory.strip('/')}/")]
    return args


def make_report(
    collected: Collected,
    trees: Sequence[GcovTree],
    directory: Path,
    *,
    gcov: str = "gcov",
    local: LocalRunner | None = None,
    jobs: int | None = None,
    keep_empty: bool = False,
    html: bool = True,
) -> CoverageReport:
    """Write the reports of ``trees`` from ``collected`` into ``directory``.

    Args:
        collected: What [`Coverage.read`][ocfs2lab.coverage.collect.Coverage.read] returned.
        trees: The builds to report (each gives ``<name>_html/`` and its JSON files).
        directory: The report directory (made if needed; ``tests/`` may already be there).
        gcov: The ``gcov`` program (of the GCC that compiled the builds).
        local: Runs gcovr.
        jobs: gcov processes in parallel (default: the number of CPUs).
        keep_empty: Also report a build no target had data of (every line uncovered).
        html: Write ``<name>_html/`` (about half of gcovr's time for the kernel); without it,
            only the JSON files, which is all
            [`CoverageReport.diff`][ocfs2lab.coverage.report.CoverageReport.diff] and the summaries
            need.

    Raises:
        CoverageError: gcovr or gcov is missing or of the wrong GCC, or gcovr failed.
    """
    local = local or LocalRunner()
    jobs = jobs or os.cpu_count() or 1
    directory.mkdir(parents=True, exist_ok=True)
    check_gcov(trees, gcov, local)
    work = directory / ".work"
    summaries: dict[str, CoverageSummary] = {}
    targets: dict[str, tuple[str, ...]] = {}
    counts: dict[str, int] = {}
    no_data: list[str] = []
    try:
        for tree in trees:
            per_target = collected.data.get(tree.name, {})
            if not any(per_target.values()) and not keep_empty:
                log.warning(
                    "coverage %s: no data from any target (%s); not reported",
                    tree.name,
                    NO_DATA_REASON,
                )
                no_data.append(tree.name)
                continue
            traces: list[Path] = []
            roots: list[Path] = []
            used: list[str] = []
            for target, files in sorted(per_target.items()) or [("none", {})]:
                root = work / tree.name / target
                placed = tree.place(files, root)
                if placed == 0 and not keep_empty:
                    continue
                trace = work / f"{tree.name}.{target}.json"
                _gcovr(
                    local,
                    [
                        "--root",
                        str(root),
                        "--gcov-executable",
                        gcov,
                        "-j",
                        str(jobs),
                        *_filters(tree, root),
                        "--json",
                        str(trace),
                        "--json-summary",
                        str(directory / f"{tree.name}_summary.{target}.json"),
                        str(root),
                    ],
                    f"{tree.name} of {target}",
                )
                traces.append(trace)
                roots.append(root)
                used.append(target)
            if not traces:
                continue
            merge: list[str] = ["--root", str(roots[0])]
            for trace in traces:
                merge += ["--add-tracefile", str(trace)]
            if html:
                pages = directory / f"{tree.name}_html"
                pages.mkdir(exist_ok=True)
                merge += [
                    "--html-details",
                    str(pages / "index.html"),
                    "--html-title",
                    f"ocfs2lab: {tree.name} coverage ({', '.join(used)})",
                ]
            merge += [
                "--json",
                str(directory / f"{tree.name}.json"),
                "--json-summary",
                str(directory / f"{tree.name}_summary.json"),
            ]
            _gcovr(local, merge, f"{tree.name}, merged")
            summaries[tree.name] = parse_summary(
                (directory / f"{tree.name}_summary.json").read_text(), tree.name
            )
            targets[tree.name] = tuple(used)
            counts[tree.name] = collected.files(tree.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    provenance = {t.name: dict(t.provenance) for t in trees if t.name in summaries and t.provenance}
    meta = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "reports": list(summaries),
        "targets": {k: list(v) for k, v in targets.items()},
        "gcda_files": counts,
        "summaries": {k: v.to_dict() for k, v in summaries.items()},
        "provenance": provenance,
        "no_data": no_data,
    }
    (directory / SUMMARY_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    return CoverageReport(
        directory=directory,
        summaries=summaries,
        targets=targets,
        gcda_files=counts,
        provenance=provenance,
        no_data=tuple(no_data),
    )


__all__ = [
    "SUMMARY_FILE",
    "CoverageReport",
    "check_gcov",
    "distinct_labels",
    "find_report",
    "make_report",
]
