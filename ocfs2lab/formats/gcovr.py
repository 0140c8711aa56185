"""gcovr's JSON reports: the summary (``--json-summary``) and the line report (``--json``).

[`parse_summary`][ocfs2lab.formats.gcovr.parse_summary] gives a
[`CoverageSummary`][ocfs2lab.formats.gcovr.CoverageSummary]: lines, functions and branches covered
per file and in total, with the one-line text the lab prints and the rows of a notebook table.
[`parse_line_counts`][ocfs2lab.formats.gcovr.parse_line_counts] gives the execution count of every
line of every file, and [`diff_line_counts`][ocfs2lab.formats.gcovr.diff_line_counts] says which
lines one run reached that another did not.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import frozen

from ocfs2lab.errors import ParseError

#: The gcovr JSON format versions these parsers were checked against (gcovr 7 and 8).
SUMMARY_FORMATS = ("0.5", "0.6")


def _percent(covered: int, total: int) -> float:
    return round(100.0 * covered / total, 1) if total else 0.0


@frozen
class FileCoverage:
    """Coverage of one source file (or of a group of them, or the total).

    Attributes:
        path: The file's path relative to the report root (``fs/ocfs2/super.c``).
        lines_total: Executable lines.
        lines_covered: Lines run at least once.
        functions_total: Functions.
        functions_covered: Functions entered at least once.
        branches_total: Branch outcomes.
        branches_covered: Branch outcomes taken at least once.
    """

    path: str
    lines_total: int
    lines_covered: int
    functions_total: int
    functions_covered: int
    branches_total: int
    branches_covered: int

    @property
    def lines_percent(self) -> float:
        """Share of lines covered, in percent (one decimal; 0 when there are none)."""
        return _percent(self.lines_covered, self.lines_total)

    @property
    def functions_percent(self) -> float:
        """Share of functions covered, in percent."""
        return _percent(self.functions_covered, self.functions_total)

    @property
    def branches_percent(self) -> float:
        """Share of branch outcomes covered, in percent."""
        return _percent(self.branches_covered, self.branches_total)

    def as_row(self) -> dict[str, Any]:
        """A flat dict: counts and percentages (a row of a table)."""
        return {
            "file": self.path,
            "lines": self.lines_covered,
            "lines_total": self.lines_total,
            "lines_%": self.lines_percent,
            "functions": self.functions_covered,
            "functions_total": self.functions_total,
            "functions_%": self.functions_percent,
            "branches": self.branches_covered,
            "branches_total": self.branches_total,
            "branches_%": self.branches_percent,
        }


def _sum(path: str, files: Iterable[FileCoverage]) -> FileCoverage:
    items = list(files)
    return FileCoverage(
        path=path,
        lines_total=sum(f.lines_total for f in items),
        lines_covered=sum(f.lines_covered for f in items),
        functions_total=sum(f.functions_total for f in items),
        functions_covered=sum(f.functions_covered for f in items),
        branches_total=sum(f.branches_total for f in items),
        branches_covered=sum(f.branches_covered for f in items),
    )


@frozen
class CoverageSummary:
    """What one report covered, per file and in total.

    Attributes:
        name: What was measured (``kernel``, ``tools``).
        files: Per-file coverage, sorted by path.
        total: The totals over all files.
    """

    name: str
    files: tuple[FileCoverage, ...]
    total: FileCoverage

    def file(self, path: str) -> FileCoverage:
        """The coverage of ``path`` (exact, or the one file whose path ends with it).

        Raises:
            KeyError: No file, or more than one, matches.
        """
        exact = [f for f in self.files if f.path == path]
        found = exact or [f for f in self.files if f.path.endswith("/" + path.lstrip("/"))]
        if len(found) != 1:
            raise KeyError(f"{self.name} coverage has {len(found)} files matching {path!r}")
        return found[0]

    def under(self, directory: str) -> FileCoverage:
        """The summed coverage of every file below ``directory`` (``fs/ocfs2/dlm``)."""
        prefix = directory.strip("/") + "/"
        return _sum(prefix.rstrip("/"), (f for f in self.files if f.path.startswith(prefix)))

    def one_line(self) -> str:
        """``kernel: 12.3% of lines (4567/37012), 20.1% of functions, 8.0% of branches, 120
        files``."""
        t = self.total
        return (
            f"{self.name}: {t.lines_percent}% of lines ({t.lines_covered}/{t.lines_total}), "
            f"{t.functions_percent}% of functions, {t.branches_percent}% of branches, "
            f"{len(self.files)} files"
        )

    def rows(self) -> list[dict[str, Any]]:
        """One row per file ([`FileCoverage.as_row`][ocfs2lab.formats.gcovr.FileCoverage.as_row]),
        then the total."""
        return [f.as_row() for f in self.files] + [self.total.as_row()]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the total and every file."""
        return {
            "name": self.name,
            "total": self.total.as_row(),
            "files": [f.as_row() for f in self.files],
        }


def _int(data: Mapping[str, Any], key: str, where: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ParseError("gcovr summary", f"{where}: {key} must be a count, got {value!r}")
    return value


def _file_coverage(path: str, data: Mapping[str, Any]) -> FileCoverage:
    return FileCoverage(
        path=path,
        lines_total=_int(data, "line_total", path),
        lines_covered=_int(data, "line_covered", path),
        functions_total=_int(data, "function_total", path),
        functions_covered=_int(data, "function_covered", path),
        branches_total=_int(data, "branch_total", path),
        branches_covered=_int(data, "branch_covered", path),
    )


def _load(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ParseError(what, f"not JSON: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise ParseError(what, "no 'files' list")
    return data


def parse_summary(text: str, name: str) -> CoverageSummary:
    """Parse gcovr's ``--json-summary`` output.

    Raises:
        ParseError: Not a gcovr summary, or a count is missing.
    """
    data = _load(text, "gcovr summary")
    version = data.get("gcovr/summary_format_version")
    if version is not None and str(version) not in SUMMARY_FORMATS:
        raise ParseError("gcovr summary", f"format {version} is not one of {SUMMARY_FORMATS}")
    files = []
    for entry in data["files"]:
        path = entry.get("filename") if isinstance(entry, dict) else None
        if not isinstance(path, str):
            raise ParseError("gcovr summary", f"a file entry has no filename: {entry!r:.120}")
        files.append(_file_coverage(path, entry))
    files.sort(key=lambda f: f.path)
    return CoverageSummary(name=name, files=tuple(files), total=_file_coverage("TOTAL", data))


#: Execution counts: ``{file: {line number: count}}`` (executable lines only).
LineCounts = dict[str, dict[int, int]]


def parse_line_counts(text: str) -> LineCounts:
    """The execution count of every executable line, from gcovr's ``--json`` output.

    A line listed twice (two functions inlined on it) counts the larger number.

    Raises:
        ParseError: Not a gcovr line report.
    """
    data = _load(text, "gcovr report")
    counts: LineCounts = {}
    for entry in data["files"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise ParseError("gcovr report", f"a file entry has no name: {entry!r:.120}")
        lines = counts.setdefault(entry["file"], {})
        for line in entry.get("lines", []):
            number, count = line.get("line_number"), line.get("count")
            if not isinstance(number, int) or not isinstance(count, int):
                raise ParseError("gcovr report", f"{entry['file']}: bad line entry {line!r:.120}")
            lines[number] = max(count, lines.get(number, 0))
    return counts


@frozen
class CoverageDiff:
    """Lines one run reached that the other did not.

    Attributes:
        only_a: ``{file: sorted line numbers}`` run in A, not in B.
        only_b: ``{file: sorted line numbers}`` run in B, not in A.
        a: Label of run A.
        b: Label of run B.
    """

    only_a: dict[str, tuple[int, ...]]
    only_b: dict[str, tuple[int, ...]]
    a: str = "a"
    b: str = "b"

    @property
    def identical(self) -> bool:
        """True when both runs reached the same lines."""
        return not self.only_a and not self.only_b

    def count(self, side: str) -> int:
        """How many lines only ``side`` (``"a"`` or ``"b"``) reached."""
        lines = self.only_a if side == "a" else self.only_b
        return sum(len(v) for v in lines.values())

    def render(self, limit: int = 20) -> str:
        """A readable list: which run is A and which B, then per file the lines only one run
        reached (``limit`` files each)."""
        out = [f"A: {self.a}", f"B: {self.b}"]
        for side, label, lines in (("A", self.a, self.only_a), ("B", self.b, self.only_b)):
            total = sum(len(v) for v in lines.values())
            out.append(f"only in {side} ({label}): {total} lines in {len(lines)} files")
            ranked = sorted(lines.items(), key=lambda kv: (-len(kv[1]), kv[0]))
            for path, numbers in ranked[:limit]:
                out.append(f"  {path}: {len(numbers)} lines ({_ranges(numbers)})")
            if len(ranked) > limit:
                out.append(f"  ... {len(ranked) - limit} more files")
        return "\n".join(out)


def _ranges(numbers: Iterable[int], limit: int = 8) -> str:
    spans: list[tuple[int, int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], n)
        else:
            spans.append((n, n))
    text = [str(a) if a == b else f"{a}-{b}" for a, b in spans[:limit]]
    if len(spans) > limit:
        text.append("...")
    return ", ".join(text)


def diff_line_counts(
    a: LineCounts, b: LineCounts, *, labels: tuple[str, str] = ("a", "b")
) -> CoverageDiff:
    """Which lines A reached that B did not, and the reverse.

    A file only one run has counts as not reached by the other.
    """

    def reached(counts: LineCounts, path: str) -> set[int]:
        return {n for n, c in counts.get(path, {}).items() if c > 0}

    only_a: dict[str, tuple[int, ...]] = {}
    only_b: dict[str, tuple[int, ...]] = {}
    for path in sorted(set(a) | set(b)):
        ra, rb = reached(a, path), reached(b, path)
        if ra - rb:
            only_a[path] = tuple(sorted(ra - rb))
        if rb - ra:
            only_b[path] = tuple(sorted(rb - ra))
    return CoverageDiff(only_a=only_a, only_b=only_b, a=labels[0], b=labels[1])


__all__ = [
    "CoverageDiff",
    "CoverageSummary",
    "FileCoverage",
    "LineCounts",
    "diff_line_counts",
    "parse_line_counts",
    "parse_summary",
]
