"""compare: interleaved design, bootstrap of medians, Mann-Whitney, and the Comparison result."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocfs2lab.errors import SpecError
from ocfs2lab.experiment.compare import (
    COMPARED_FIGURES,
    Comparison,
    FigureComparison,
    bootstrap_difference,
    compare_rows,
    interleaved_order,
    mann_whitney_p,
    run_interleaved,
)

np = pytest.importorskip("numpy")
pytest.importorskip("scipy")


def _normal(mean: float, sd: float, n: int, seed: int) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).normal(mean, sd, n)]


def _row(end: float | None, *, run: int = 1, lost: int = 0) -> dict[str, Any]:
    """A row shaped like RecoveryReport.row(), the steps placed around ``end``."""

    def at(offset: float) -> float | None:
        return None if end is None else end + offset

    return {
        "run": run,
        "fault": "kill",
        "victim": "ocfs2-node-3",
        "detected_s": at(-2.0),
        "connection_lost_s": at(-1.6),
        "evicted_s": at(-1.5),
        "recovery_begin_s": at(-1.0),
        "recovery_end_s": end,
        "recovery_s": at(-9.0),  # moves with the planted shift
        "replay_end_s": at(0.4),
        "recovery_master": "ocfs2-node-1",
        "fenced": "",
        "victim_fate": "killed",
        "revive_error": None,
        "repaired": None,
        "max_stall_s": at(1.0),
        "acked_writes": 120,
        "lost_writes": lost,
        "in_order": True,
        "dlm_errors": 0,
        "dead_threshold": 7,
        "idle_timeout_ms": 10000,
        "duration_s": 60.0,
    }


def _planted() -> tuple[list[float], list[float]]:
    base = _normal(10.0, 0.3, 5, seed=7)
    return base, [x + 3.0 for x in base]


def _comparison(**kwargs: Any) -> Comparison:
    base, other = _planted()
    rows = {
        "base": [_row(x, run=i + 1) for i, x in enumerate(base)],
        "patched": [_row(x, run=i + 1, lost=i % 2) for i, x in enumerate(other)],
    }
    return compare_rows(rows, **kwargs)


# ----------------------------------------------------------------------------------------
# Design


def test_interleaved_order_runs_every_label_once_per_round() -> None:
    assert interleaved_order(["A", "B"], 3) == [
        (1, "A"),
        (1, "B"),
        (2, "A"),
        (2, "B"),
        (3, "A"),
        (3, "B"),
    ]
    assert interleaved_order(("x", "y", "z"), 1) == [(1, "x"), (1, "y"), (1, "z")]


@pytest.mark.parametrize(
    ("labels", "repeat", "field"),
    [
        (["A", "B"], 0, "repeat"),
        (["A", "B"], True, "repeat"),
        (["A"], 2, "labels"),
        (["A", "B", "A"], 2, "labels"),
        ("AB", 2, "labels"),
        (["A", ""], 2, "labels"),
    ],
)
def test_interleaved_order_rejects_bad_input(labels: Any, repeat: Any, field: str) -> None:
    with pytest.raises(SpecError) as err:
        interleaved_order(labels, repeat)
    assert err.value.field == field


# ----------------------------------------------------------------------------------------
# Statistics


def test_planted_shift_is_found() -> None:
    base, other = _planted()
    diff, low, high = bootstrap_difference(base, other, seed=1)
    assert diff == pytest.approx(3.0, abs=0.5)
    assert 0.0 < low <= high
    assert low <= diff <= high


def test_identical_distributions_give_an_interval_around_zero() -> None:
    base = _normal(10.0, 0.3, 5, seed=1)
    other = _normal(10.0, 0.3, 5, seed=2)
    _, low, high = bootstrap_difference(base, other)
    assert low <= 0.0 <= high
    diff, low, high = bootstrap_difference(base, base)
    assert diff == 0.0
    assert low < 0.0 < high


def test_bootstrap_is_reproducible_with_a_seed() -> None:
    base = _normal(10.0, 1.0, 6, seed=3)
    other = _normal(11.0, 1.0, 7, seed=4)
    assert bootstrap_difference(base, other, seed=5) == bootstrap_difference(base, other, seed=5)
    assert bootstrap_difference(base, other, seed=5) != bootstrap_difference(base, other, seed=6)


def test_wider_confidence_gives_a_wider_interval() -> None:
    base = _normal(10.0, 1.0, 8, seed=3)
    other = _normal(11.0, 1.0, 8, seed=4)
    _, low80, high80 = bootstrap_difference(base, other, confidence=0.8)
    _, low99, high99 = bootstrap_difference(base, other, confidence=0.99)
    assert low99 <= low80 and high80 <= high99


def test_bootstrap_of_large_samples_is_chunked_and_matches_the_median() -> None:
    base = _normal(5.0, 1.0, 3000, seed=8)
    other = [x + 1.0 for x in base]
    diff, low, high = bootstrap_difference(base, other, resamples=2000)
    assert diff == pytest.approx(1.0)
    assert low < 1.0 < high
    assert high - low < 0.3


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"base": [1.0], "other": [1.0, 2.0]}, "base"),
        ({"base": [1.0, 2.0], "other": []}, "other"),
        ({"base": [1.0, float("nan")], "other": [1.0, 2.0]}, "base"),
        ({"base": [1.0, 2.0], "other": [1.0, "2"]}, "other"),
        ({"base": [1.0, 2.0], "other": [1.0, 2.0], "confidence": 1.0}, "confidence"),
        ({"base": [1.0, 2.0], "other": [1.0, 2.0], "resamples": 10}, "resamples"),
        ({"base": [1.0, 2.0], "other": [1.0, 2.0], "seed": -1}, "seed"),
    ],
)
def test_bootstrap_rejects_bad_input(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        bootstrap_difference(**kwargs)
    assert err.value.field == field


def test_mann_whitney() -> None:
    # Completely separated groups of 5: the exact two-sided p is 2 / C(10, 5).
    assert mann_whitney_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(2 / 252)
    assert mann_whitney_p([3.0, 3.0, 3.0], [3.0, 3.0, 3.0]) == 1.0
    with pytest.raises(SpecError) as err:
        mann_whitney_p([], [1.0])
    assert err.value.field == "base"


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(finite, min_size=2, max_size=15),
    st.lists(finite, min_size=2, max_size=15),
    st.integers(min_value=0, max_value=2**32),
)
def test_interval_lies_within_the_possible_differences(
    base: list[float], other: list[float], seed: int
) -> None:
    diff, low, high = bootstrap_difference(base, other, resamples=500, seed=seed)
    lowest = min(other) - max(base)
    highest = max(other) - min(base)
    assert lowest <= low <= high <= highest
    assert lowest <= diff <= highest


# ----------------------------------------------------------------------------------------
# compare_rows


def test_compare_rows_finds_the_planted_shift_in_every_figure() -> None:
    c = _comparison()
    assert c.labels == ("base", "patched")
    assert [f.figure for f in c.figures] == list(COMPARED_FIGURES)
    for f in c.figures:
        assert (f.base, f.other, f.n_base, f.n_other) == ("base", "patched", 5, 5)
        assert f.difference == pytest.approx(3.0, abs=0.5)
        assert f.shifted is True
        assert f.p_value == pytest.approx(2 / 252)
        assert f.confidence == 0.95
    end = c.figure("recovery_end_s")
    base, other = _planted()
    assert end.median_base == pytest.approx(float(np.median(base)))
    assert end.median_other == pytest.approx(float(np.median(other)))


def test_same_seed_same_comparison() -> None:
    # Noisy runs (the planted shift is so clean that every seed gives the same interval).
    rows = {
        "base": [_row(x) for x in _normal(10.0, 1.0, 8, seed=1)],
        "patched": [_row(x) for x in _normal(11.0, 1.0, 8, seed=2)],
    }
    same = compare_rows(rows, seed=3).figures
    assert compare_rows(rows, seed=3).figures == same
    other = compare_rows(rows, seed=4).figures
    assert [(f.ci_low, f.ci_high) for f in other] != [(f.ci_low, f.ci_high) for f in same]
    assert [f.difference for f in other] == [f.difference for f in same]  # no resampling


def test_rows_are_in_run_order_with_arm_and_round() -> None:
    c = _comparison()
    assert [(r["round"], r["arm"]) for r in c.rows] == interleaved_order(["base", "patched"], 5)
    # The caller's rows are not changed.
    rows = [_row(10.0), _row(11.0)]
    compare_rows({"a": rows, "b": rows}, figures=["recovery_end_s"])
    assert "arm" not in rows[0]


def test_rows_keep_their_own_round_and_arm() -> None:
    rows = {
        "a": [{**_row(10.0), "round": 2, "arm": "a"}, {**_row(10.5), "round": 1}],
        "b": [{**_row(11.0), "round": 1}, {**_row(11.5), "round": 2}],
    }
    c = compare_rows(rows, figures=["recovery_end_s"])
    assert [(r["round"], r["arm"], r["recovery_end_s"]) for r in c.rows] == [
        (1, "a", 10.5),
        (1, "b", 11.0),
        (2, "a", 10.0),
        (2, "b", 11.5),
    ]


def test_none_values_are_dropped() -> None:
    base = [10.0, None, 10.2, 10.4, None]
    other = [13.0, 13.1, None, 13.3, 13.2]
    c = compare_rows(
        {"base": [_row(x) for x in base], "patched": [_row(x) for x in other]},
        figures=["recovery_end_s"],
    )
    f = c.figure("recovery_end_s")
    assert (f.n_base, f.n_other) == (3, 4)
    assert f.median_base == pytest.approx(10.2)
    assert f.median_other == pytest.approx(13.15)
    assert f.difference == pytest.approx(2.95)
    assert f.p_value == pytest.approx(mann_whitney_p([10.0, 10.2, 10.4], [13.0, 13.1, 13.3, 13.2]))
    # The interval excludes 0, but 3 against 4 runs cannot reach p < 0.05 (at best 0.057):
    # no shift is claimed on so few runs.
    assert f.ci_low is not None and f.ci_low > 0
    assert f.p_value is not None and f.p_value > 0.05 and f.shifted is False


def test_a_shift_needs_the_interval_and_the_rank_test() -> None:
    # Three runs a side, every patched run above every base run: the bootstrap interval
    # excludes 0, yet the rank test cannot go below p = 0.1. Four runs a side can.
    three = compare_rows(
        {
            "base": [_row(x) for x in (10.0, 10.1, 10.2)],
            "patched": [_row(x) for x in (10.3, 10.4, 10.5)],
        },
        figures=["recovery_end_s"],
    ).figure("recovery_end_s")
    assert three.ci_low is not None and three.ci_low > 0
    assert three.p_value == pytest.approx(0.1) and three.shifted is False
    four = compare_rows(
        {
            "base": [_row(x) for x in (10.0, 10.1, 10.2, 10.15)],
            "patched": [_row(x) for x in (10.3, 10.4, 10.5, 10.35)],
        },
        figures=["recovery_end_s"],
    ).figure("recovery_end_s")
    assert four.p_value is not None and four.p_value < 0.05 and four.shifted is True


def test_nan_counts_as_not_seen() -> None:
    c = compare_rows(
        {"a": [_row(10.0), _row(float("nan")), _row(10.2)], "b": [_row(11.0), _row(11.2)]},
        figures=["recovery_end_s"],
    )
    assert c.figure("recovery_end_s").n_base == 2


def test_too_few_values_give_none_figures() -> None:
    c = compare_rows(
        {"base": [_row(10.0), _row(10.5)], "patched": [_row(None), _row(13.0)]},
        figures=["recovery_end_s", "evicted_s"],
    )
    f = c.figure("recovery_end_s")
    assert (f.n_base, f.n_other) == (2, 1)
    assert f.median_other == 13.0
    assert f.difference is None and f.ci_low is None and f.ci_high is None
    assert f.p_value is None
    assert f.shifted is None
    assert "not computable" in f.summary()
    never = compare_rows(
        {"a": [_row(None), _row(None)], "b": [_row(1.0), _row(2.0)]}, figures=["evicted_s"]
    ).figure("evicted_s")
    assert never.median_base is None and never.n_base == 0 and never.difference is None


def test_provenance_is_kept_per_label() -> None:
    c = _comparison(provenance={"patched": {"kernel": "6.8.0-rc1", "commit": "abc123"}})
    assert c.provenance == {"base": {}, "patched": {"kernel": "6.8.0-rc1", "commit": "abc123"}}


def test_three_arms_compare_each_against_the_base() -> None:
    rows = {
        "A": [_row(x) for x in _normal(10.0, 0.3, 4, seed=1)],
        "B": [_row(x) for x in _normal(12.0, 0.3, 4, seed=2)],
        "C": [_row(x) for x in _normal(10.0, 0.3, 4, seed=3)],
    }
    c = compare_rows(rows, figures=["recovery_end_s", "detected_s"])
    assert [(f.figure, f.other) for f in c.figures] == [
        ("recovery_end_s", "B"),
        ("recovery_end_s", "C"),
        ("detected_s", "B"),
        ("detected_s", "C"),
    ]
    assert c.figure("recovery_end_s", "B").shifted is True
    assert c.figure("recovery_end_s", "C").shifted is False
    with pytest.raises(SpecError) as err:
        c.figure("recovery_end_s")
    assert err.value.field == "other"


def _bad(rows: Mapping[str, Any], **kwargs: Any) -> str:
    with pytest.raises(SpecError) as err:
        compare_rows(rows, **kwargs)
    return err.value.field


def test_compare_rows_rejects_bad_input() -> None:
    good = [_row(10.0), _row(11.0)]
    assert _bad({"a": good}) == "rows_by_label"
    assert _bad({"a": good, "b": []}) == "rows_by_label['b']"
    assert _bad({"a": good, "b": [42]}) == "rows_by_label['b'][0]"
    assert _bad({"a": good, "b": [{**_row(1.0), "arm": "c"}]}) == "rows_by_label['b'][0].arm"
    assert _bad({"a": good, "b": [_row(1.0), {**_row(1.0), "round": "2"}]}) == (
        "rows_by_label['b'][1].round"
    )
    bad_value = {**_row(1.0), "evicted_s": "soon"}
    assert _bad({"a": good, "b": [bad_value]}) == "rows_by_label['b'][0].evicted_s"
    infinite = {**_row(1.0), "evicted_s": math.inf}
    assert _bad({"a": good, "b": [infinite]}) == "rows_by_label['b'][0].evicted_s"
    assert _bad({"a": good, "b": good}, figures=["recovery_ends"]) == "figures"
    assert _bad({"a": good, "b": good}, figures=[]) == "figures"
    assert _bad({"a": good, "b": good}, figures="recovery_end_s") == "figures"
    assert _bad({"a": good, "b": good}, confidence=95) == "confidence"
    assert _bad({"a": good, "b": good}, resamples=0) == "resamples"
    assert _bad({"a": good, "b": good}, provenance={"c": {}}) == "provenance"


def test_figure_lookup() -> None:
    c = _comparison(figures=["recovery_end_s"])
    assert c.figure("recovery_end_s") is c.figures[0]
    assert c.figure("recovery_end_s", "patched") is c.figures[0]
    with pytest.raises(SpecError) as err:
        c.figure("evicted_s")
    assert err.value.field == "figure"
    with pytest.raises(SpecError) as err:
        c.figure("recovery_end_s", "base")
    assert err.value.field == "other"


def test_lost_writes_per_label() -> None:
    assert _comparison().lost_writes() == {"base": 0, "patched": 2}


# ----------------------------------------------------------------------------------------
# run_interleaved


def test_run_interleaved_runs_the_arms_in_interleaved_order() -> None:
    base, other = _planted()
    calls: list[tuple[str, int]] = []
    progress: list[tuple[int, str, float]] = []

    def arm(label: str, values: list[float]) -> Any:
        def run(round_: int) -> dict[str, Any]:
            calls.append((label, round_))
            return _row(values[round_ - 1], run=round_)

        return run

    c = run_interleaved(
        {"base": arm("base", base), "patched": arm("patched", other)},
        5,
        on_run=lambda r, label, row: progress.append((r, label, row["recovery_end_s"])),
        figures=["recovery_end_s", "max_stall_s"],
        provenance={"base": {"kernel": "6.8.0"}},
    )
    assert calls == [(label, r) for r, label in interleaved_order(["base", "patched"], 5)]
    assert [(r, label) for r, label, _ in progress] == interleaved_order(["base", "patched"], 5)
    assert progress[1][2] == other[0]
    assert c.labels == ("base", "patched")
    assert [(r["round"], r["arm"]) for r in c.rows] == interleaved_order(["base", "patched"], 5)
    assert [f.figure for f in c.figures] == ["recovery_end_s", "max_stall_s"]
    assert c.figure("recovery_end_s").difference == pytest.approx(3.0, abs=0.5)
    assert c.figure("recovery_end_s").shifted is True
    assert c.provenance == {"base": {"kernel": "6.8.0"}, "patched": {}}


def test_run_interleaved_checks_options_before_running() -> None:
    calls: list[int] = []

    def run(round_: int) -> dict[str, Any]:
        calls.append(round_)
        return _row(10.0)

    cases: list[tuple[dict[str, Any], str]] = [
        ({"confidence": 2.0}, "confidence"),
        ({"figures": ()}, "figures"),
        ({"provenance": {"x": {}}}, "provenance"),
    ]
    for kwargs, field in cases:
        with pytest.raises(SpecError) as err:
            run_interleaved({"a": run, "b": run}, 2, **kwargs)
        assert err.value.field == field
    with pytest.raises(SpecError) as err:
        run_interleaved({"a": run, "b": run}, 0)
    assert err.value.field == "repeat"
    with pytest.raises(SpecError) as err:
        run_interleaved({"a": run}, 2)
    assert err.value.field == "labels"
    assert calls == []


def test_run_interleaved_rejects_a_run_that_returns_no_row() -> None:
    arms: dict[str, Any] = {"a": lambda r: _row(1.0), "b": lambda r: None}
    with pytest.raises(SpecError) as err:
        run_interleaved(arms, 2)
    assert err.value.field == "arms['b'](1)"


# ----------------------------------------------------------------------------------------
# Output


def test_figure_summary_line() -> None:
    f = FigureComparison(
        figure="recovery_end_s",
        base="base",
        other="patched",
        n_base=3,
        n_other=3,
        median_base=12.3,
        median_other=15.4,
        difference=3.1,
        ci_low=2.6,
        ci_high=3.7,
        confidence=0.95,
        p_value=0.03,
    )
    assert f.summary() == (
        "recovery_end_s: base 12.3 s, patched 15.4 s, +3.1 s [2.6, 3.7] 95% CI, p=0.03 (n=3/3)"
    )
    assert f.shifted is True


def test_comparison_summary_is_a_table() -> None:
    text = _comparison().summary()
    lines = text.splitlines()
    assert lines[0] == "base base (5 runs) vs patched (5 runs)"
    assert any(line.startswith("recovery_end_s") and "base" in line for line in lines)
    shifted = [line for line in lines if line.rstrip().endswith("shifted")]
    assert len(shifted) == len(COMPARED_FIGURES)
    assert lines[-1] == "times in seconds; lost writes: base 0, patched 2"


def test_to_json_round_trips() -> None:
    c = _comparison(provenance={"base": {"path": Path("/boot/vmlinuz"), "flags": ("a", "b")}})
    data = c.to_json()
    again = json.loads(json.dumps(data, allow_nan=False))
    assert again == data
    assert again["labels"] == ["base", "patched"]
    assert again["base"] == "base"
    assert again["confidence"] == 0.95
    assert len(again["rows"]) == 10
    assert again["rows"][0]["arm"] == "base" and again["rows"][0]["round"] == 1
    assert len(again["figures"]) == len(COMPARED_FIGURES)
    assert again["figures"][0]["shifted"] is True
    assert again["provenance"]["base"] == {"path": "/boot/vmlinuz", "flags": ["a", "b"]}
    assert again["lost_writes"] == {"base": 0, "patched": 2}


def test_dataframes() -> None:
    pytest.importorskip("pandas")
    c = _comparison()
    runs = c.to_dataframe()
    assert len(runs) == 10
    assert list(runs.columns[:2]) == ["arm", "round"]
    assert list(runs["arm"][:2]) == ["base", "patched"]
    table = c.table()
    assert len(table) == len(COMPARED_FIGURES)
    assert list(table["figure"]) == list(COMPARED_FIGURES)
    assert {"difference", "ci_low", "ci_high", "p_value", "shifted"} <= set(table.columns)
    assert bool(table["shifted"].all())


def _text_boxes(figure: Any) -> list[tuple[str, Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415

    canvas: Any = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts: list[Any] = [figure._suptitle] if figure._suptitle is not None else []
    for ax in figure.axes:
        texts += [ax.title, ax.yaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels()]
    return [
        (t.get_text(), t.get_window_extent(renderer))
        for t in texts
        if t.get_visible() and t.get_text()
    ]


@pytest.mark.parametrize(
    "labels",
    [
        ("base", "patched"),
        ("6.8.0-base", "6.8.0-rc1-ocfs2-patched", "6.9.0-experimental-long-name"),
    ],
)
def test_plot_has_one_axes_per_figure_and_no_overlapping_text(labels: tuple[str, ...]) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure  # noqa: PLC0415

    rows = {
        label: [_row(x) for x in _normal(10.0 + i, 0.3, 5, seed=i)]
        for i, label in enumerate(labels)
    }
    rows[labels[-1]][0]["replay_end_s"] = None  # an unseen step is drawn too
    c = compare_rows(rows)
    figure = c.plot()
    assert isinstance(figure, Figure)
    assert len(figure.axes) == len(COMPARED_FIGURES)
    assert [ax.get_title().splitlines()[0] for ax in figure.axes] == list(COMPARED_FIGURES)
    boxes = _text_boxes(figure)
    assert len(boxes) > len(COMPARED_FIGURES)  # at least every title and the tick labels
    whole = figure.bbox
    for i, (text, box) in enumerate(boxes):
        assert whole.x0 - 1 <= box.x0 and box.x1 <= whole.x1 + 1, text
        assert whole.y0 - 1 <= box.y0 and box.y1 <= whole.y1 + 1, text
        for other_text, other_box in boxes[i + 1 :]:
            assert not box.overlaps(other_box), (text, other_text)

    two = c.plot(["recovery_end_s", "lost_writes"])
    assert len(two.axes) == 2


def test_plot_rejects_unknown_figures() -> None:
    pytest.importorskip("matplotlib")
    c = _comparison()
    with pytest.raises(SpecError) as err:
        c.plot(["nope_s"])
    assert err.value.field == "figures"
    with pytest.raises(SpecError) as err:
        c.plot([])
    assert err.value.field == "figures"
    with pytest.raises(SpecError) as err:
        c.plot(["victim"])
    assert err.value.field == "figures"
