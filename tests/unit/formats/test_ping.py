"""ping -q summaries, captured on a lab VM pinging another across the interconnect
(tests/lab/test_fault_campaigns.py::test_degraded_link_of_node3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocfs2lab.errors import ParseError
from ocfs2lab.formats.ping import parse_ping

DATA = Path(__file__).resolve().parents[2] / "data" / "ping"


def test_a_clean_link() -> None:
    summary = parse_ping((DATA / "clean.txt").read_text())
    assert (summary.sent, summary.received, summary.duplicates) == (40, 40, 0)
    assert summary.loss == 0 and summary.rtt_min_ms == 1.491 and summary.rtt_max_ms == 9.827


def test_a_degraded_link() -> None:
    summary = parse_ping((DATA / "degraded.txt").read_text())
    assert summary.received == 22 and round(summary.loss, 2) == 0.45
    assert summary.rtt_min_ms == 320.079 and summary.rtt_avg_ms == 400.791


def test_nothing_came_back_and_duplicates() -> None:
    lost = parse_ping("3 packets transmitted, 0 received, 100% packet loss, time 2040ms\n")
    assert lost.loss == 1 and lost.rtt_avg_ms is None
    dup = parse_ping("5 packets transmitted, 5 received, +2 duplicates, 0% packet loss\n")
    assert dup.duplicates == 2


def test_not_ping_output() -> None:
    with pytest.raises(ParseError, match="packets transmitted"):
        parse_ping("ping: connect: Network is unreachable\n")
