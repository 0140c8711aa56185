"""``--fail-if`` criteria: parsing, medians, and which criteria hold."""

from __future__ import annotations

import pytest

from ocfs2lab.errors import SpecError
from ocfs2lab.experiment.criteria import Criterion, failing, medians, parse_criteria


def test_parse_and_evaluate() -> None:
    criteria = parse_criteria("recovery_end_s > 20 or lost_writes >= 1")
    assert criteria == (Criterion("recovery_end_s", ">", 20.0), Criterion("lost_writes", ">=", 1.0))
    assert str(criteria[0]) == "recovery_end_s > 20"
    rows = [
        {"recovery_end_s": 18.0, "lost_writes": 0, "fault": "kill"},
        {"recovery_end_s": 25.0, "lost_writes": 0, "fault": "kill"},
        {"recovery_end_s": 22.0, "lost_writes": 0, "fault": "kill"},
    ]
    found = medians(rows)
    assert found["recovery_end_s"] == 22.0 and found["lost_writes"] == 0
    assert "fault" not in found
    assert failing(criteria, found) == [(criteria[0], 22.0)]
    assert failing(parse_criteria("recovery_end_s > 30"), found) == []
    # A step never seen counts as failing: it is the worst outcome.
    assert failing(parse_criteria("replay_end_s < 5"), {"replay_end_s": None})


@pytest.mark.parametrize(
    "text", ["", "recovery_end_s", "recovery_end_s >> 3", "import os", "x > y", "a > 1 and b < 2"]
)
def test_bad_criteria_are_refused(text: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_criteria(text)
    assert err.value.field == "fail_if"


def test_unknown_figure_is_named() -> None:
    with pytest.raises(SpecError, match="not a figure"):
        parse_criteria("recovery_s > 1", ["recovery_end_s"])
