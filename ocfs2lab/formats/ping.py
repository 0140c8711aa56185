"""``ping -q`` summaries (iputils): packets sent and received, and round-trip times.

The lab pings across the interconnect to show what a degraded link does to it
([`DegradedLink`][ocfs2lab.experiment.faults.DegradedLink]).
"""

from __future__ import annotations

import re

from attrs import frozen

from ocfs2lab.errors import ParseError
from ocfs2lab.formats._text import require_text

__all__ = ["PingSummary", "parse_ping"]

_COUNTS = re.compile(
    r"(?P<sent>\d+) packets transmitted, (?P<received>\d+) received"
    r"(?:, \+(?P<duplicates>\d+) duplicates)?"
)
_RTT = re.compile(
    r"rtt min/avg/max/mdev = (?P<min>[\d.]+)/(?P<avg>[\d.]+)/(?P<max>[\d.]+)/(?P<mdev>[\d.]+) ms"
)


@frozen
class PingSummary:
    """What ``ping`` counted.

    Attributes:
        sent: Echo requests sent.
        received: Distinct replies received.
        duplicates: Replies received more than once.
        rtt_min_ms: Shortest round trip (``None`` when nothing came back).
        rtt_avg_ms: Mean round trip.
        rtt_max_ms: Longest round trip.
    """

    sent: int
    received: int
    duplicates: int = 0
    rtt_min_ms: float | None = None
    rtt_avg_ms: float | None = None
    rtt_max_ms: float | None = None

    @property
    def loss(self) -> float:
        """Share of requests without a reply, 0-1."""
        return 1 - self.received / self.sent if self.sent else 0.0


def parse_ping(text: str) -> PingSummary:
    """Read the summary at the end of ``ping`` output.

    Raises:
        ParseError: No ``packets transmitted`` line.
    """
    text = require_text(text, "ping output")
    counts = _COUNTS.search(text)
    if counts is None:
        raise ParseError("ping output", "no 'packets transmitted' line", text=text[-200:])
    rtt = _RTT.search(text)
    return PingSummary(
        sent=int(counts["sent"]),
        received=int(counts["received"]),
        duplicates=int(counts["duplicates"] or 0),
        rtt_min_ms=float(rtt["min"]) if rtt else None,
        rtt_avg_ms=float(rtt["avg"]) if rtt else None,
        rtt_max_ms=float(rtt["max"]) if rtt else None,
    )
