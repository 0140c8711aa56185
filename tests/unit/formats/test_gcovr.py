"""gcovr's JSON reports, captured from gcovr 8.8 on the lab's own coverage probe (o2probe).

``o2probe-write-verify``: the probe ran ``write`` and ``verify``; ``o2probe-statfs``: it ran
``statfs`` and a bad command line only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocfs2lab.errors import ParseError
from ocfs2lab.formats.gcovr import (
    CoverageSummary,
    diff_line_counts,
    parse_line_counts,
    parse_summary,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "gcovr"


def summary(name: str) -> CoverageSummary:
    return parse_summary((DATA / f"{name}.summary.json").read_text(), "tools")


def test_summary_of_the_probe() -> None:
    s = summary("o2probe-write-verify")
    probe = s.file("o2probe.c")
    assert (probe.lines_covered, probe.lines_total) == (36, 68)
    assert (probe.functions_covered, probe.functions_total) == (5, 6)
    assert probe.lines_percent == 52.9
    assert s.total.lines_total == 68
    assert s.one_line() == (
        "tools: 52.9% of lines (36/68), 83.3% of functions, 50.0% of branches, 1 files"
    )
    rows = s.rows()
    assert [r["file"] for r in rows] == ["o2probe.c", "TOTAL"]
    assert rows[0]["lines_%"] == 52.9


def test_file_lookup_by_suffix_and_directory_sums() -> None:
    data = json.loads((DATA / "o2probe-write-verify.summary.json").read_text())
    first = dict(data["files"][0], filename="fs/ocfs2/super.c")
    second = dict(data["files"][0], filename="fs/ocfs2/dlm/dlmrecovery.c", line_covered=0)
    data["files"] = [first, second]
    s = parse_summary(json.dumps(data), "kernel")
    assert s.file("super.c").path == "fs/ocfs2/super.c"
    assert s.file("dlm/dlmrecovery.c").lines_covered == 0
    assert s.under("fs/ocfs2/dlm").lines_covered == 0
    assert s.under("fs/ocfs2").lines_covered == 36
    assert s.under("fs/ocfs2").lines_total == 136
    with pytest.raises(KeyError):
        s.file("nothing.c")


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"files": [{"line_total": 3}]}',
        '{"files": [{"filename": "a.c", "line_total": -1}]}',
        '{"gcovr/summary_format_version": "9.9", "files": []}',
    ],
)
def test_bad_summaries_are_refused(text: str) -> None:
    with pytest.raises(ParseError):
        parse_summary(text, "kernel")


def test_line_counts_and_the_diff_of_two_runs() -> None:
    io = parse_line_counts((DATA / "o2probe-write-verify.json").read_text())
    statfs = parse_line_counts((DATA / "o2probe-statfs.json").read_text())
    assert set(io) == {"o2probe.c"}
    diff = diff_line_counts(io, statfs, labels=("io", "statfs"))
    assert not diff.identical
    # write/verify reached the I/O functions, statfs the statfs branch and the usage line.
    assert diff.count("a") > 20
    assert diff.count("b") > 3
    assert set(diff.only_a["o2probe.c"]).isdisjoint(diff.only_b["o2probe.c"])
    text = diff.render()
    assert text.splitlines()[:3] == [
        "A: io",
        "B: statfs",
        f"only in A (io): {diff.count('a')} lines in 1 files",
    ]
    assert f"only in B (statfs): {diff.count('b')} lines in 1 files" in text
    assert "o2probe.c" in text
    assert diff_line_counts(io, io).identical


def test_a_line_listed_twice_keeps_the_larger_count() -> None:
    text = json.dumps(
        {
            "files": [
                {
                    "file": "x.c",
                    "lines": [
                        {"line_number": 3, "count": 0},
                        {"line_number": 3, "count": 5},
                    ],
                }
            ]
        }
    )
    assert parse_line_counts(text) == {"x.c": {3: 5}}
    with pytest.raises(ParseError):
        parse_line_counts('{"files": [{"file": "x.c", "lines": [{"line_number": "3"}]}]}')
