"""Property tests: any console junk is kept, never raises; dmesg polls yield each line once;
a timeline stays in time order whatever order events come in."""

from __future__ import annotations

import itertools
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocfs2lab.observe import ConsoleFeed, DmesgDedupe, DmesgLine, LabEventKind, Timeline

from .conftest import BUG_LINE, DOMAIN, KILL_SURVIVOR, PARTITION_NODE2

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Real lines, member-list fragments, prefixes and random text mixed.
_REAL = [
    *KILL_SURVIVOR,
    *PARTITION_NODE2,
    BUG_LINE,
    f"o2dlm: Joining domain {DOMAIN}",
    f"[  1.0] o2dlm: Node 2 joins domain {DOMAIN}",
    f"o2dlm: Node 3 leaves domain {DOMAIN}",
    "(",
    " ( 1 2 ) 2 nodes",
    "1 ",
    ") 3 nodes",
    ")",
    "nodes",
    "[    1.000] ",
    "<4>[   12.5] WARNING: CPU: 0 PID: 1 at x",
    "\x1b[0;32m  OK  \x1b[0m] Started",
]
_LINE = st.one_of(
    st.sampled_from(_REAL),
    st.text(alphabet=st.characters(blacklist_characters="\n", blacklist_categories=["Cs"])),
    st.text(alphabet="()0123456789 nodes[]."),
)


@SETTINGS
@given(st.lists(_LINE, max_size=60), st.integers(min_value=0, max_value=10))
def test_console_junk_never_raises_and_every_line_is_kept(lines: list[str], hold: int) -> None:
    tl = Timeline()
    console = ConsoleFeed(tl, "node1", hold=0, max_interleaved=hold)
    for i, line in enumerate(lines):
        console(1000.0 + i, line)
    console.close()
    kept = [e for e in tl.events() if e.kernel is not None]
    raws = [raw for e in kept for raw in e.kernel.raw.split("\n")]  # type: ignore[union-attr]
    # Every line is kept (a member list that arrives after unrelated lines is attached to
    # its join line, so the raws are not always in arrival order).
    assert sorted(raws) == sorted(line for line in lines if line.strip())
    # Each event carries the stamp of its first line.
    for e in kept:
        first = e.kernel.raw.split("\n")[0]  # type: ignore[union-attr]
        assert lines[int(e.time - 1000.0)] == first
    assert [e.time for e in tl.events()] == sorted(e.time for e in tl.events())


_STAMPED = st.lists(
    st.tuples(st.integers(min_value=0, max_value=40), st.sampled_from(["a", "b", "c", "o2net"])),
    max_size=80,
)


@SETTINGS
@given(_STAMPED, st.lists(st.integers(min_value=0, max_value=80), max_size=6))
def test_dedupe_returns_every_line_once_over_growing_polls(
    items: list[tuple[int, str]], cuts: list[int]
) -> None:
    # A log whose stamps never go back by more than the dedupe's slack, read by polls of
    # ever longer prefixes (the ring buffer only grows here).
    log: list[DmesgLine] = []
    stamp = 0.0
    for jitter, text in items:
        stamp = max(stamp, stamp + (jitter - 10) / 100)  # non-decreasing, many equal stamps
        wobble = -0.5 if jitter % 7 == 0 else 0.0  # some lines stored slightly out of order
        log.append(DmesgLine(round(stamp + wobble, 6), text))
    dedupe = DmesgDedupe(slack=1.0)
    seen: list[DmesgLine] = []
    for cut in [*sorted(cuts), len(log)]:
        seen.extend(dedupe.new(log[: min(cut, len(log))]))
    assert seen == log


@SETTINGS
@given(st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), max_size=100))
def test_timeline_keeps_time_order_whatever_the_arrival_order(times: list[float]) -> None:
    tl = Timeline()
    for i, t in enumerate(times):
        tl.record(LabEventKind.NOTE, str(i), time=t)
    events = tl.events()
    assert [e.time for e in events] == sorted(times)
    # Equal times keep their arrival order.
    for a, b in itertools.pairwise(events):
        if a.time == b.time:
            assert a.seq < b.seq
    if times:
        lo = random.Random(0).choice(times)
        assert tl.events(since=lo) == [e for e in events if e.time >= lo]
