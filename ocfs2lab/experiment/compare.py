"""Compare recovery figures of two or more kernels (or any labelled arms), run in rounds.

An A/B comparison of kernels is only as good as its design and its statistics:

* **interleaved rounds**: [`interleaved_order`][ocfs2lab.experiment.compare.interleaved_order] runs
  every arm once per round
  (``A, B, A, B, ...``), so a slow drift of the host (thermal, page cache, a noisy
  neighbour) lands on every arm alike instead of on the arm that ran last;
* **medians and a bootstrap interval**:
  [`bootstrap_difference`][ocfs2lab.experiment.compare.bootstrap_difference] gives the difference of
  the medians (``median(other) - median(base)``) with a percentile bootstrap confidence
  interval, which assumes no distribution (recovery times are skewed and few);
* **a rank test**: [`mann_whitney_p`][ocfs2lab.experiment.compare.mann_whitney_p] gives the
  two-sided Mann-Whitney U p-value.

[`run_interleaved`][ocfs2lab.experiment.compare.run_interleaved] runs the arms (callables that
return a row, e.g.
[`row`][ocfs2lab.experiment.recovery.RecoveryReport.row]) in that order and
[`compare_rows`][ocfs2lab.experiment.compare.compare_rows] turns the rows into a
[`Comparison`][ocfs2lab.experiment.compare.Comparison]: one
[`FigureComparison`][ocfs2lab.experiment.compare.FigureComparison] per figure and non-base arm, a
text summary, a pandas table, a
JSON dict and a plot of the distributions.

The module is pure: it touches no machine. The statistics need numpy and scipy, the
tables pandas, the plot matplotlib (all in the ``notebook`` extra); each is imported when
first needed and a missing one raises
[`MissingDependency`][ocfs2lab.observe.export.MissingDependency].
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from attrs import asdict, fields, frozen

from ocfs2lab.errors import SpecError
from ocfs2lab.observe.export import require_module

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from pandas import DataFrame

#: The figures of a `RecoveryReport` row that
#: `compare_rows` compares by default (seconds after the fault; ``max_stall_s`` is
#: the longest gap between two acknowledged writes on a survivor).
COMPARED_FIGURES = (
    "detected_s",
    "evicted_s",
    "recovery_begin_s",
    "recovery_end_s",
    "recovery_s",
    "replay_end_s",
    "max_stall_s",
)

#: Fewest resamples `bootstrap_difference` accepts (fewer make a meaningless interval).
MIN_RESAMPLES = 100
#: Most numbers one vectorised bootstrap step holds in memory (the resamples are drawn in
#: chunks of this size, so large samples do not need gigabytes).
_CHUNK_NUMBERS = 2_000_000


# ----------------------------------------------------------------------------------------
# Checks


def _check_confidence(confidence: float, field: str = "confidence") -> float:
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not 0.0 < confidence < 1.0
    ):
        raise SpecError(field, confidence, "must be a number strictly between 0 and 1 (0.95)")
    return float(confidence)


def _check_resamples(resamples: int, field: str = "resamples") -> int:
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < MIN_RESAMPLES:
        raise SpecError(field, resamples, f"must be an integer of at least {MIN_RESAMPLES}")
    return resamples


def _check_seed(seed: int, field: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError(field, seed, "must be a non-negative integer")
    return seed


def _check_labels(labels: Sequence[str], field: str) -> tuple[str, ...]:
    if isinstance(labels, str):
        raise SpecError(field, labels, "must be a sequence of labels, not one string")
    out = tuple(labels)
    if len(out) < 2:
        raise SpecError(field, out, "needs at least two labels (a base and one other)")
    for label in out:
        if not isinstance(label, str) or not label.strip():
            raise SpecError(field, out, f"every label must be a non-empty string, got {label!r}")
    dupes = sorted({label for label in out if out.count(label) > 1})
    if dupes:
        raise SpecError(field, out, f"labels must be distinct; repeated: {', '.join(dupes)}")
    return out


def _check_figures(figures: Sequence[str], field: str = "figures") -> tuple[str, ...]:
    if isinstance(figures, str):
        raise SpecError(field, figures, "must be a sequence of figure names, not one string")
    out = tuple(figures)
    if not out:
        raise SpecError(field, out, "needs at least one figure")
    for name in out:
        if not isinstance(name, str) or not name:
            raise SpecError(field, out, f"every figure must be a non-empty string, got {name!r}")
    dupes = sorted({name for name in out if out.count(name) > 1})
    if dupes:
        raise SpecError(field, out, f"figures must be distinct; repeated: {', '.join(dupes)}")
    return out


def _check_provenance(
    provenance: Mapping[str, Mapping[str, Any]] | None, labels: Sequence[str]
) -> dict[str, dict[str, Any]]:
    given = dict(provenance or {})
    unknown = sorted(set(given) - set(labels), key=str)
    if unknown:
        raise SpecError(
            "provenance",
            unknown,
            f"names labels that are not arms; the arms are {', '.join(labels)}",
        )
    out: dict[str, dict[str, Any]] = {}
    for label in labels:
        entry = given.get(label, {})
        if not isinstance(entry, Mapping):
            raise SpecError(f"provenance[{label!r}]", entry, "must be a mapping")
        out[label] = dict(entry)
    return out


def _sample(values: Sequence[float], field: str, minimum: int) -> list[float]:
    if isinstance(values, str | bytes):
        raise SpecError(field, values, "must be a sequence of numbers")
    out: list[float] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise SpecError(field, list(values), f"every value must be a finite number, got {v!r}")
        out.append(float(v))
    if len(out) < minimum:
        raise SpecError(field, out, f"needs at least {minimum} values, got {len(out)}")
    return out


# ----------------------------------------------------------------------------------------
# Design and statistics


def interleaved_order(labels: Sequence[str], repeat: int) -> list[tuple[int, str]]:
    """The runs of an interleaved comparison: every round runs every label once, in order.

    ``interleaved_order(["A", "B"], 3)`` is ``[(1, "A"), (1, "B"), (2, "A"), (2, "B"),
    (3, "A"), (3, "B")]``.

    Args:
        labels: The arms (the first is the base), at least two, distinct.
        repeat: Rounds (at least 1).

    Returns:
        ``(round, label)`` pairs in run order; rounds count from 1.

    Raises:
        SpecError: ``repeat`` is not an integer of at least 1, or there are fewer than two
            labels, or a label is repeated or empty.
    """
    arms = _check_labels(labels, "labels")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise SpecError("repeat", repeat, "must be an integer of at least 1")
    return [(round_, label) for round_ in range(1, repeat + 1) for label in arms]


def bootstrap_difference(
    base: Sequence[float],
    other: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Difference of the medians and its percentile bootstrap confidence interval.

    Each group is resampled with replacement, independently, ``resamples`` times; the
    interval is the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of
    ``median(other*) - median(base*)``. The same seed gives the same interval. With few
    values per group (3 to 5 runs) the interval is coarse, as it should be: it can only
    take values that differences of the groups' order statistics take.

    Args:
        base: The base arm's values (at least 2, finite).
        other: The other arm's values (at least 2, finite).
        confidence: Coverage of the interval, strictly between 0 and 1.
        resamples: Bootstrap resamples (at least `MIN_RESAMPLES`).
        seed: Seed of the numpy random generator.

    Returns:
        ``(median(other) - median(base), low, high)``.

    Raises:
        SpecError: A group has fewer than 2 values or a value that is not a finite number,
            or ``confidence``, ``resamples`` or ``seed`` is out of range.
        MissingDependency: numpy is not installed (the ``notebook`` extra).
    """
    b_values = _sample(base, "base", 2)
    o_values = _sample(other, "other", 2)
    level = _check_confidence(confidence)
    count = _check_resamples(resamples)
    _check_seed(seed)
    require_module("numpy", "numpy", "bootstrap_difference()")
    import numpy as np  # noqa: PLC0415

    b = np.asarray(b_values, dtype=float)
    o = np.asarray(o_values, dtype=float)
    rng = np.random.default_rng(seed)
    diffs = np.empty(count, dtype=float)
    chunk = max(1, _CHUNK_NUMBERS // (b.size + o.size))
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        b_star = np.median(b[rng.integers(0, b.size, size=(n, b.size))], axis=1)
        o_star = np.median(o[rng.integers(0, o.size, size=(n, o.size))], axis=1)
        diffs[start : start + n] = o_star - b_star
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(diffs, [alpha, 1.0 - alpha])
    point = float(np.median(o)) - float(np.median(b))
    return point, float(low), float(high)


def mann_whitney_p(base: Sequence[float], other: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value of ``base`` against ``other``.

    scipy picks the exact distribution for small samples without ties, else the normal
    approximation with tie correction. Note the floor of the exact test: with 3 runs per
    arm the smallest two-sided p-value is 0.1, with 5 per arm about 0.008.

    Args:
        base: The base arm's values (at least 1, finite).
        other: The other arm's values (at least 1, finite).

    Returns:
        The p-value (1.0 when every value is the same).

    Raises:
        SpecError: A group is empty or has a value that is not a finite number.
        MissingDependency: scipy is not installed (the ``notebook`` extra).
    """
    b_values = _sample(base, "base", 1)
    o_values = _sample(other, "other", 1)
    stats = require_module("scipy.stats", "scipy", "mann_whitney_p()")
    p = float(stats.mannwhitneyu(b_values, o_values, alternative="two-sided").pvalue)
    return 1.0 if math.isnan(p) else p


# ----------------------------------------------------------------------------------------
# Results


def _decimals(*values: float | None) -> int:
    """Decimals that show the values given to about three significant digits."""
    scale = max((abs(v) for v in values if v is not None), default=0.0)
    if scale >= 10:
        return 1
    if scale >= 1:
        return 2
    return 3


def _format_p(p: float | None) -> str:
    if p is None:
        return "-"
    if p < 0.001:
        return "<0.001"
    return f"{p:.2g}"


@frozen
class FigureComparison:
    """One figure of one arm against the base.

    Attributes:
        figure: The figure's name (a row key, ``recovery_end_s``).
        base: The base arm's label.
        other: The other arm's label.
        n_base: Runs of the base arm where the figure was seen.
        n_other: Runs of the other arm where the figure was seen.
        median_base: Median over the base arm (``None``: never seen).
        median_other: Median over the other arm (``None``: never seen).
        difference: ``median_other - median_base`` (``None``: fewer than 2 values on a side).
        ci_low: Lower bound of the percentile bootstrap interval of the difference.
        ci_high: Upper bound of it.
        confidence: Coverage of the interval (0.95).
        p_value: Two-sided Mann-Whitney U p-value (``None``: fewer than 2 values on a side).
    """

    figure: str
    base: str
    other: str
    n_base: int
    n_other: int
    median_base: float | None
    median_other: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    p_value: float | None

    @property
    def shifted(self) -> bool | None:
        """The other arm's figure moved: the bootstrap interval excludes 0 **and** the
        Mann-Whitney U test rejects "no difference" at the same level (``p < 1 -
        confidence``). ``None``: not computable (too few runs).

        Both must agree because a percentile bootstrap of medians is too narrow with few
        runs: with 3 runs a side it excludes 0 whenever one arm's runs all lie on one side
        of the other's by chance, which happens one time in ten when nothing moved. The rank
        test's smallest p-value is 0.1 with 3 runs a side, 0.029 with 4 and 0.008 with 5, so
        a shift can be claimed at 95% from 4 runs a side.
        """
        if self.ci_low is None or self.ci_high is None or self.p_value is None:
            return None
        excluded = self.ci_low > 0.0 or self.ci_high < 0.0
        return excluded and self.p_value < 1.0 - self.confidence

    def summary(self) -> str:
        """One line: both medians, the difference, its interval, the p-value and the counts.

        E.g. ``recovery_end_s: base 12.3 s, patched 15.4 s, +3.1 s [2.6, 3.7] 95% CI, p=0.03
        (n=3/3)``.
        """
        d = _decimals(self.median_base, self.median_other)

        def s(v: float | None) -> str:
            return "-" if v is None else f"{v:.{d}f} s"

        head = (
            f"{self.figure}: {self.base} {s(self.median_base)}, "
            f"{self.other} {s(self.median_other)}, "
        )
        n = f"(n={self.n_base}/{self.n_other})"
        if self.difference is None or self.ci_low is None or self.ci_high is None:
            return head + f"difference not computable: fewer than 2 values on a side {n}"
        return head + (
            f"{self.difference:+.{d}f} s [{self.ci_low:.{d}f}, {self.ci_high:.{d}f}] "
            f"{self.confidence:.0%} CI, p={_format_p(self.p_value)} {n}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields and [`shifted`][ocfs2lab.experiment.compare.FigureComparison.shifted] as a
        flat dict."""
        return {**asdict(self), "shifted": self.shifted}


def _jsonable(value: Any) -> Any:
    """``value`` made of dicts, lists, strings, finite floats, ints, bools and ``None``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [_jsonable(v) for v in items]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _values(rows: Sequence[Mapping[str, Any]], label: str, figure: str) -> list[float]:
    """The figure's seen values over an arm's rows (``None`` and NaN dropped)."""
    out: list[float] = []
    for row in rows:
        if row["arm"] != label:
            continue
        v = row.get(figure)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        out.append(float(v))
    return out


_BREAK = re.compile(r"(?<=[-_.+/ ])")


def _wrap(label: str, width: int) -> str:
    """``label`` on lines of about ``width`` characters, broken after ``-_.+/`` or spaces."""
    lines: list[str] = []
    line = ""
    for part in _BREAK.split(label):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    lines.append(line)
    out: list[str] = []
    for ln in lines:  # a part longer than the width is cut hard
        out.extend(textwrap.wrap(ln, width, break_on_hyphens=False) or [ln])
    return "\n".join(s.strip() for s in out)


@frozen
class Comparison:
    """Two or more arms run in rounds, their rows, and every arm against the base.

    Attributes:
        labels: The arms; the first is the base.
        rows: Every run's row in run order (round, then arm), with ``arm`` (the label) and
            ``round`` (from 1) keys.
        figures: Every non-base arm against the base, per figure (figure by figure, then
            arm by arm).
        provenance: Per label, what the caller said about the arm (e.g. kernel provenance);
            opaque, may be empty.
        confidence: Coverage of the intervals.
    """

    labels: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    figures: tuple[FigureComparison, ...]
    provenance: dict[str, dict[str, Any]]
    confidence: float

    @property
    def base(self) -> str:
        """The base arm's label."""
        return self.labels[0]

    def figure(self, name: str, other: str | None = None) -> FigureComparison:
        """The comparison of one figure for one arm against the base.

        Args:
            name: The figure (``recovery_end_s``).
            other: The other arm; may be left out when there is only one.

        Returns:
            The comparison.

        Raises:
            SpecError: ``name`` was not compared, ``other`` is not a non-base arm, or
                ``other`` is left out while there are several non-base arms.
        """
        others = self.labels[1:]
        if other is None:
            if len(others) != 1:
                raise SpecError(
                    "other", other, f"name the arm to compare: one of {', '.join(others)}"
                )
            other = others[0]
        elif other not in others:
            raise SpecError("other", other, f"must be a non-base arm: one of {', '.join(others)}")
        index = {(f.figure, f.other): f for f in self.figures}
        try:
            return index[(name, other)]
        except KeyError:
            compared = list(dict.fromkeys(f.figure for f in self.figures))
            raise SpecError(
                "figure", name, f"was not compared; compared: {', '.join(compared)}"
            ) from None

    def lost_writes(self) -> dict[str, int]:
        """Per label, the sum of the rows' ``lost_writes`` (rows without it count 0)."""
        out = dict.fromkeys(self.labels, 0)
        for row in self.rows:
            v = row.get("lost_writes")
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                out[row["arm"]] += int(v)
        return out

    def runs(self) -> dict[str, int]:
        """Per label, how many runs it had."""
        out = dict.fromkeys(self.labels, 0)
        for row in self.rows:
            out[row["arm"]] += 1
        return out

    def to_dataframe(self) -> DataFrame:
        """The runs as a pandas DataFrame, one row per run, ``arm`` and ``round`` first.

        Raises:
            MissingDependency: pandas is not installed (the ``notebook`` extra).
        """
        pd = require_module("pandas", "pandas", "Comparison.to_dataframe()")
        columns = ["arm", "round"]
        for row in self.rows:
            columns.extend(k for k in row if k not in columns)
        return pd.DataFrame([dict(r) for r in self.rows], columns=columns)

    def table(self) -> DataFrame:
        """The figure comparisons as a pandas DataFrame, one row per
        [`FigureComparison`][ocfs2lab.experiment.compare.FigureComparison].

        Raises:
            MissingDependency: pandas is not installed (the ``notebook`` extra).
        """
        pd = require_module("pandas", "pandas", "Comparison.table()")
        columns = [*(a.name for a in fields(FigureComparison)), "shifted"]
        return pd.DataFrame([f.to_dict() for f in self.figures], columns=columns)

    def to_json(self) -> dict[str, Any]:
        """Everything as a JSON-serialisable dict.

        Keys: ``labels``, ``base``, ``confidence``, ``rows``, ``figures`` (each with
        ``shifted``), ``provenance``, ``lost_writes``. Values JSON cannot hold are made
        JSON-able: tuples become lists, non-finite floats ``None``, unknown objects their
        ``str()``.
        """
        out: dict[str, Any] = {
            "labels": list(self.labels),
            "base": self.base,
            "confidence": self.confidence,
            "rows": [_jsonable(r) for r in self.rows],
            "figures": [_jsonable(f.to_dict()) for f in self.figures],
            "provenance": _jsonable(self.provenance),
            "lost_writes": self.lost_writes(),
        }
        return out

    def summary(self) -> str:
        """A text table: per figure, each arm's median and the difference from the base."""
        runs = self.runs()
        lost = self.lost_writes()
        lines = [
            f"base {self.base} ({runs[self.base]} runs) vs "
            + ", ".join(f"{label} ({runs[label]} runs)" for label in self.labels[1:]),
            f"vs base: difference of medians; CI: {self.confidence:.0%} percentile bootstrap;"
            " p: two-sided Mann-Whitney U",
        ]
        header = ("figure", "arm", "n", "median", "vs base", "CI", "p", "")
        table: list[tuple[str, ...]] = [header]
        order = list(dict.fromkeys(f.figure for f in self.figures))
        for name in order:
            group = [f for f in self.figures if f.figure == name]
            first = group[0]
            d = _decimals(first.median_base, *(f.median_other for f in group))

            def s(v: float | None, sign: str = "", d: int = d) -> str:
                return "-" if v is None else f"{v:{sign}.{d}f}"

            table.append((name, first.base, str(first.n_base), s(first.median_base), "", "", ""))
            for f in group:
                ci = (
                    "-"
                    if f.ci_low is None or f.ci_high is None
                    else f"[{s(f.ci_low)}, {s(f.ci_high)}]"
                )
                mark = {True: "shifted", False: "", None: "too few"}[f.shifted]
                table.append(
                    (
                        "",
                        f.other,
                        str(f.n_other),
                        s(f.median_other),
                        s(f.difference, "+"),
                        ci,
                        _format_p(f.p_value),
                        mark,
                    )
                )
        widths = [max(len(r[i]) if i < len(r) else 0 for r in table) for i in range(len(header))]
        right = {2, 3, 4, 6}
        for r in table:
            cells = [
                (c.rjust(w) if i in right else c.ljust(w))
                for i, (c, w) in enumerate(zip(r, widths, strict=False))
            ]
            lines.append("  ".join(cells).rstrip())
        lines.append(
            "times in seconds; lost writes: "
            + ", ".join(f"{label} {lost[label]}" for label in self.labels)
        )
        return "\n".join(lines)

    def plot(self, figures: Sequence[str] = COMPARED_FIGURES) -> Figure:
        """Every arm's distribution of each figure, side by side.

        One axes per figure: each arm's runs as jittered points (the jitter is seeded, so
        the plot is the same each time), its median as a black bar, the arms' labels (and
        run counts) under the axis; the title says, for each non-base arm, the difference of
        medians from the base and its interval. Made without pyplot (safe under Agg, in
        threads, in loops; a notebook displays it when it is a cell's value).

        Args:
            figures: The figures to draw (row keys), at least one.

        Returns:
            The `matplotlib.figure.Figure`.

        Raises:
            SpecError: ``figures`` is empty, repeats a name, or names a figure no row has
                or one with values that are not numbers.
            MissingDependency: matplotlib or numpy is not installed (the ``notebook`` extra).
        """
        names = _check_figures(figures)
        known = {k for row in self.rows for k in row}
        missing = [n for n in names if n not in known]
        if missing:
            raise SpecError("figures", list(names), f"no row has {', '.join(missing)}")
        for name in names:
            for row in self.rows:
                v = row.get(name)
                if v is not None and not _is_number(v):
                    raise SpecError("figures", name, f"has a value that is not a number: {v!r}")
        require_module("matplotlib", "matplotlib", "Comparison.plot()")
        require_module("numpy", "numpy", "Comparison.plot()")
        import numpy as np  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415

        n_arms = len(self.labels)
        ncols = min(3, len(names))
        nrows = math.ceil(len(names) / ncols)
        ax_width = max(3.6, 1.1 * n_arms + 1.0)
        figure = Figure(figsize=(ax_width * ncols, 3.3 * nrows + 0.5), layout="constrained")
        grid = figure.subplots(nrows, ncols, squeeze=False)
        # Characters of a label line that fit under one arm at 8 pt (about 5 pt a character).
        per_arm = int((ax_width - 0.8) * 72 / n_arms / 5.2)
        title_width = max(12, int((ax_width - 0.5) * 72 / 5.5))
        rng = np.random.default_rng(0)
        index = {(f.figure, f.other): f for f in self.figures}

        for k, name in enumerate(names):
            ax: Any = grid[k // ncols][k % ncols]
            ticks: list[str] = []
            for i, label in enumerate(self.labels):
                values = _values(self.rows, label, name)
                unseen = sum(1 for r in self.rows if r["arm"] == label) - len(values)
                if values:
                    xs = i + rng.uniform(-0.15, 0.15, size=len(values))
                    ax.scatter(
                        xs,
                        values,
                        s=28,
                        color=f"C{i % 10}",
                        alpha=0.75,
                        edgecolors="black",
                        linewidths=0.4,
                        zorder=3,
                    )
                    ax.hlines(
                        float(np.median(values)), i - 0.3, i + 0.3, colors="black", lw=2, zorder=4
                    )
                count = f"n={len(values)}" + (f", {unseen} unseen" if unseen else "")
                ticks.append(f"{_wrap(label, max(per_arm, 6))}\n{count}")
            ax.set_xticks(range(n_arms), ticks, fontsize=8)
            ax.set_xlim(-0.6, n_arms - 0.4)
            ax.set_ylabel("seconds", fontsize=8)
            ax.tick_params(axis="y", labelsize=8)
            ax.grid(axis="y", alpha=0.3)
            title = [name]
            for other in self.labels[1:]:
                f = index.get((name, other))
                if f is None:  # a figure drawn but not compared
                    continue
                if f.difference is None or f.ci_low is None or f.ci_high is None:
                    figures_text = "too few values"
                else:
                    d = _decimals(f.median_base, f.median_other)
                    figures_text = f"{f.difference:+.{d}f} s [{f.ci_low:.{d}f}, {f.ci_high:.{d}f}]"
                line = f"{other}: {figures_text}"
                if len(line) > title_width:  # the label on its own line(s), then the numbers
                    line = f"{_wrap(other + ':', title_width)}\n{figures_text}"
                title.append(line)
            ax.set_title("\n".join(title), fontsize=8.5, loc="center")
            if not any(_values(self.rows, label, name) for label in self.labels):
                ax.text(0.5, 0.5, "never seen", transform=ax.transAxes, ha="center", va="center")
        for k in range(len(names), nrows * ncols):
            figure.delaxes(grid[k // ncols][k % ncols])
        figure.suptitle(
            f"each arm against {self.base}: median difference, "
            f"{self.confidence:.0%} bootstrap CI (bar: median)",
            fontsize=9,
        )
        return figure


# ----------------------------------------------------------------------------------------
# Building a comparison


def _compare(
    rows: Sequence[dict[str, Any]],
    labels: tuple[str, ...],
    name: str,
    other: str,
    *,
    confidence: float,
    resamples: int,
    seed: int,
) -> FigureComparison:
    base = labels[0]
    b = _values(rows, base, name)
    o = _values(rows, other, name)
    require_module("numpy", "numpy", "compare_rows()")
    import numpy as np  # noqa: PLC0415

    difference = ci_low = ci_high = p = None
    if len(b) >= 2 and len(o) >= 2:
        difference, ci_low, ci_high = bootstrap_difference(
            b, o, confidence=confidence, resamples=resamples, seed=seed
        )
        p = mann_whitney_p(b, o)
    return FigureComparison(
        figure=name,
        base=base,
        other=other,
        n_base=len(b),
        n_other=len(o),
        median_base=float(np.median(b)) if b else None,
        median_other=float(np.median(o)) if o else None,
        difference=difference,
        ci_low=ci_low,
        ci_high=ci_high,
        confidence=confidence,
        p_value=p,
    )


def compare_rows(
    rows_by_label: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    figures: Sequence[str] = COMPARED_FIGURES,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
    provenance: Mapping[str, Mapping[str, Any]] | None = None,
) -> Comparison:
    """Compare every arm's figures against the first arm's (the base).

    A figure's ``None`` (or NaN) values, steps not seen in a run, are dropped before the
    statistics; a figure with fewer than 2 values left on either side gets ``None``
    difference, interval and p-value. A row missing a figure counts as not seen. Every
    figure is bootstrapped with the same ``seed``, so its interval does not depend on
    which other figures are compared.

    Args:
        rows_by_label: Per arm, in order (the first is the base), its runs' rows (e.g.
            [`row`][ocfs2lab.experiment.recovery.RecoveryReport.row]). A row's ``arm``, if
            present, must be its label; its ``round`` is kept if present, else the row's
            place in its arm's list (from 1) is the round.
        figures: The row keys to compare.
        confidence: Coverage of the bootstrap intervals.
        resamples: Bootstrap resamples.
        seed: Bootstrap seed.
        provenance: Per label, anything to keep with the result (e.g. kernel provenance).

    Returns:
        The comparison; its rows are in run order (round, then arm).

    Raises:
        SpecError: Fewer than two arms, an arm without rows, a row that is not a mapping or
            whose ``arm`` is not its label, a figure value that is not a finite number or
            ``None``, a figure that no row has, provenance for an unknown arm, or
            ``confidence``, ``resamples`` or ``seed`` out of range.
        MissingDependency: numpy or scipy is not installed (the ``notebook`` extra).
    """
    if not isinstance(rows_by_label, Mapping):
        raise SpecError("rows_by_label", rows_by_label, "must be a mapping of label to rows")
    labels = _check_labels(list(rows_by_label), "rows_by_label")
    names = _check_figures(figures)
    level = _check_confidence(confidence)
    _check_resamples(resamples)
    _check_seed(seed)
    kept = _check_provenance(provenance, labels)

    collected: list[tuple[int, int, int, dict[str, Any]]] = []
    for arm_index, label in enumerate(labels):
        arm_rows = rows_by_label[label]
        field = f"rows_by_label[{label!r}]"
        if isinstance(arm_rows, Mapping | str) or not isinstance(arm_rows, Sequence):
            raise SpecError(field, arm_rows, "must be a sequence of rows (mappings)")
        if not arm_rows:
            raise SpecError(field, [], "needs at least one row")
        for i, raw in enumerate(arm_rows):
            where = f"{field}[{i}]"
            if not isinstance(raw, Mapping):
                raise SpecError(where, raw, "must be a mapping (a row)")
            row = dict(raw)
            if row.setdefault("arm", label) != label:
                raise SpecError(f"{where}.arm", row["arm"], f"must be its label {label!r}")
            round_ = row.setdefault("round", i + 1)
            if isinstance(round_, bool) or not isinstance(round_, int):
                raise SpecError(f"{where}.round", round_, "must be an integer")
            for name in names:
                v = row.get(name)
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    continue
                if not _is_number(v) or not math.isfinite(v):
                    raise SpecError(f"{where}.{name}", v, "must be a finite number or None")
            collected.append((round_, arm_index, i, row))
    known = {k for *_, row in collected for k in row}
    absent = [n for n in names if n not in known]
    if absent:
        raise SpecError("figures", list(names), f"no row has {', '.join(absent)}")

    collected.sort(key=lambda t: t[:3])
    rows = tuple(row for *_, row in collected)
    compared = tuple(
        _compare(rows, labels, name, other, confidence=level, resamples=resamples, seed=seed)
        for name in names
        for other in labels[1:]
    )
    return Comparison(labels=labels, rows=rows, figures=compared, provenance=kept, confidence=level)


def run_interleaved(
    arms: Mapping[str, Callable[[int], Mapping[str, Any]]],
    repeat: int,
    *,
    on_run: Callable[[int, str, Mapping[str, Any]], None] | None = None,
    figures: Sequence[str] = COMPARED_FIGURES,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
    provenance: Mapping[str, Mapping[str, Any]] | None = None,
) -> Comparison:
    """Run the arms in interleaved rounds and compare them.

    Calls ``arms[label](round)`` in
    [`interleaved_order`][ocfs2lab.experiment.compare.interleaved_order] (every round runs every arm
    once, in the mapping's order; the first arm is the base). Each call returns one row
    (e.g. ``experiment.run_once(...).row()``); its ``arm`` and ``round`` keys are set to
    the label and the round. Every option is checked before the first run. An arm's
    exception ends the comparison; use ``on_run`` to keep what was done so far.

    Args:
        arms: Per label, a callable that runs one round and returns its row.
        repeat: Rounds (at least 1).
        on_run: Called after each run with ``(round, label, row)`` (a progress hook).
        figures: See [`compare_rows`][ocfs2lab.experiment.compare.compare_rows].
        confidence: See [`compare_rows`][ocfs2lab.experiment.compare.compare_rows].
        resamples: See [`compare_rows`][ocfs2lab.experiment.compare.compare_rows].
        seed: See [`compare_rows`][ocfs2lab.experiment.compare.compare_rows].
        provenance: See [`compare_rows`][ocfs2lab.experiment.compare.compare_rows].

    Returns:
        The comparison of the rows.

    Raises:
        SpecError: Fewer than two arms, an arm that is not callable, ``repeat`` below 1,
            a bad option (see [`compare_rows`][ocfs2lab.experiment.compare.compare_rows]), or a run
            that did not return a
            mapping or returned a bad figure value.
        MissingDependency: numpy or scipy is not installed (the ``notebook`` extra).
    """
    if not isinstance(arms, Mapping):
        raise SpecError("arms", arms, "must be a mapping of label to callable")
    order = interleaved_order(list(arms), repeat)
    for label, fn in arms.items():
        if not callable(fn):
            raise SpecError(f"arms[{label!r}]", fn, "must be callable with the round number")
    _check_figures(figures)
    _check_confidence(confidence)
    _check_resamples(resamples)
    _check_seed(seed)
    _check_provenance(provenance, list(arms))
    require_module("numpy", "numpy", "run_interleaved()")
    require_module("scipy.stats", "scipy", "run_interleaved()")

    rows: dict[str, list[dict[str, Any]]] = {label: [] for label in arms}
    for round_, label in order:
        result = arms[label](round_)
        if not isinstance(result, Mapping):
            raise SpecError(f"arms[{label!r}]({round_})", result, "must return a mapping (a row)")
        row = {**result, "arm": label, "round": round_}
        rows[label].append(row)
        if on_run is not None:
            on_run(round_, label, row)
    return compare_rows(
        rows,
        figures=figures,
        confidence=confidence,
        resamples=resamples,
        seed=seed,
        provenance=provenance,
    )
