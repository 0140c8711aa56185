"""How `ocfs2lab coverage diff` names its two sides: by the ends of the report directories'
paths that tell them apart, never "coverage" twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocfs2lab.coverage.report import distinct_labels


@pytest.mark.parametrize(
    ("a", "b", "labels"),
    [
        ("/w/run1/coverage", "/w/run2/coverage", ("run1/coverage", "run2/coverage")),
        (
            "/w/vm-kill-results/coverage",
            "/w/gcov_reports_1",
            ("vm-kill-results/coverage", "gcov_reports_1"),
        ),
        ("/w/gcov_reports_1", "/w/gcov_reports_2", ("gcov_reports_1", "gcov_reports_2")),
        ("/a/x/coverage", "/b/x/coverage", ("a/x/coverage", "b/x/coverage")),
        ("/w/run1/coverage", "/w/run1/coverage", ("run1/coverage", "run1/coverage")),
    ],
)
def test_labels_tell_the_runs_apart(a: str, b: str, labels: tuple[str, str]) -> None:
    assert distinct_labels(Path(a), Path(b)) == labels
