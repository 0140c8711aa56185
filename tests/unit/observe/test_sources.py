"""ConsoleFeed (member lists, hold timer, a real SerialConsole on a pipe) and the pure dmesg
parts: output splitting, clock mapping, dedupe. The DmesgPoller's order of work is checked
with a scripted runner here; it runs for real in tests/integration/test_recorder.py."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from ocfs2lab.errors import CommandFailed, Ocfs2LabError, ParseError
from ocfs2lab.observe import (
    ClockMap,
    ConsoleFeed,
    DmesgDedupe,
    DmesgLine,
    DmesgPoller,
    EventKind,
    LabEventKind,
    Timeline,
    parse_dmesg_poll,
)
from ocfs2lab.observe.sources import DMESG_COMMAND, ConsoleTap, parse_uptime
from ocfs2lab.vm.console import SerialConsole
from tests.support.fake import FakeRunner

from .conftest import DOMAIN, KILL_SURVIVOR, T0, feed

JOIN = f"[   61.000100] o2dlm: Joining domain {DOMAIN}"


# -- ConsoleFeed --------------------------------------------------------------------------


def test_member_list_fragments_are_attached_to_the_join() -> None:
    tl = Timeline()
    console = ConsoleFeed(tl, "node1")
    console(T0, JOIN)
    console(T0 + 0.01, "[   61.000101] ( ")
    console(T0 + 0.02, "[   61.000102] 1 ")
    console(T0 + 0.03, "[   61.000103] 2 ")
    assert len(tl) == 0  # held until the list is complete
    console(T0 + 0.04, "[   61.000104] ) 2 nodes")
    console(
        T0 + 0.05,
        "[   61.022310] ocfs2: Mounting device (254,16) on (node 1, slot 0) "
        "with ordered data mode.",
    )
    join, mount = tl.events()
    assert join.kind is EventKind.DLM_JOIN
    assert join.kernel is not None and join.kernel.members == (1, 2)
    assert join.time == T0  # the time of the join line, not of the list's end
    assert join.kernel.raw.count("\n") == 4
    assert mount.kind is EventKind.OCFS2_MOUNT and mount.time == T0 + 0.05
    assert console.lines_seen == 6 and console.events_added == 2


def test_a_join_without_its_list_is_released_by_the_hold_timer() -> None:
    tl = Timeline()
    console = ConsoleFeed(tl, "node1", hold=0.2)
    start = time.monotonic()
    console(T0, JOIN)
    [join] = tl.expect(EventKind.DLM_JOIN, timeout=5)
    assert 0.1 < time.monotonic() - start < 2.0
    assert join.kernel is not None and join.kernel.members is None and join.time == T0
    console.close()
    console.close()


def test_text_with_newlines_counts_as_several_lines() -> None:
    tl = Timeline()
    console = ConsoleFeed(tl, "node1")
    console(T0, "\n".join(KILL_SURVIVOR[:2]) + "\n")
    assert [e.kind for e in tl] == [EventKind.O2NET_IDLE, EventKind.O2NET_LOST]
    assert all(e.time == T0 for e in tl)


def test_feed_attaches_to_a_real_serial_console(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    stream = os.fdopen(read_fd, "rb", buffering=0)
    console = SerialConsole(stream, tmp_path / "console.log", name="node1")
    tl = Timeline()
    ConsoleFeed(tl, "node1").attach(console)
    console.start()
    before = time.time()
    os.write(write_fd, ("\r\n".join(KILL_SURVIVOR) + "\r\n").encode())
    found = tl.expect(EventKind.O2NET_LOST, EventKind.JOURNAL_REPLAY_END, timeout=10)
    after = time.time()
    os.close(write_fd)
    assert console.close(5)
    assert all(before <= e.time <= after for e in found)
    assert len(tl) == len(KILL_SURVIVOR)
    assert not any(e.text.endswith("\r") for e in tl)


def test_a_tap_feeds_several_timelines_from_one_console(tmp_path: Path) -> None:
    """A lab VM's console feeds the cluster's timeline and a test's at once; each stops on
    its own, and a closed tap feeds none."""
    read_fd, write_fd = os.pipe()
    console = SerialConsole(os.fdopen(read_fd, "rb", buffering=0), tmp_path / "c.log", name="h")
    tap = ConsoleTap()
    console.add_listener(tap)
    cluster, test = Timeline(), Timeline()
    tap.feed(cluster, "labhost")
    test_source = tap.feed(test, "labhost")
    console.start()
    os.write(write_fd, (KILL_SURVIVOR[0] + "\r\n").encode())
    for tl in (cluster, test):
        tl.expect(EventKind.O2NET_IDLE, timeout=10)
    test_source.close()
    test_source.close()  # idempotent
    os.write(write_fd, (KILL_SURVIVOR[1] + "\r\n").encode())
    cluster.expect(EventKind.O2NET_LOST, timeout=10)
    tap.close()
    os.write(write_fd, (KILL_SURVIVOR[2] + "\r\n").encode())
    os.close(write_fd)
    assert console.close(5)
    assert [e.node for e in cluster] == ["labhost", "labhost"]
    assert [e.kind for e in test] == [EventKind.O2NET_IDLE]


def test_a_feed_never_raises_into_the_console_thread(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Timeline):
        def add_kernel_events(self, node, events):  # type: ignore[no-untyped-def]
            raise RuntimeError("bug")

    timeline = Broken()
    console = ConsoleFeed(timeline, "node1")
    with caplog.at_level(logging.ERROR):
        console(T0, KILL_SURVIVOR[0])  # logged, not raised
    assert console.lines_seen == 1 and console.events_added == 0 and len(timeline) == 0
    [record] = [r for r in caplog.records if "console feed failed" in r.getMessage()]
    assert record.exc_info is not None and str(record.exc_info[1]) == "bug"


# -- dmesg: pure parts -------------------------------------------------------------------

POLL = "\n".join(
    [
        "2041.10 2603.84",
        "[    0.000000] Linux version 6.1.0-27-amd64",
        KILL_SURVIVOR[0],
        "a continuation line",
        KILL_SURVIVOR[1],
        "",
        "",
    ]
)


def test_parse_dmesg_poll() -> None:
    uptime, lines = parse_dmesg_poll(POLL)
    assert uptime == 2041.10
    assert [line.stamp for line in lines] == [0.0, 301.183272, 301.183272, 301.183911]
    assert [line.stamped for line in lines] == [True, True, False, True]
    assert lines[2].text == "a continuation line"
    with pytest.raises(ParseError):
        parse_dmesg_poll("dmesg: read kernel buffer failed: Operation not permitted\n")
    with pytest.raises(ParseError):
        parse_uptime("")
    assert parse_dmesg_poll("12.00 3.00") == (12.0, [])


def test_clock_map_intersects_samples_and_notices_jumps() -> None:
    cmap = ClockMap(resolution=0.01)
    assert not cmap.ready
    with pytest.raises(Ocfs2LabError, match="no sample yet"):
        cmap.to_host(1.0)
    # Kernel booted at host time 1000.0: uptime u is read at host time 1000 + u,
    # printed truncated to hundredths.
    assert not cmap.observe(1100.000, 100.00, 1100.200)  # read at 1100.004
    assert cmap.offset == pytest.approx(1000.095)
    assert cmap.uncertainty == pytest.approx(0.105)
    assert not cmap.observe(1200.003, 200.00, 1200.009)  # [999.993, 1000.009]
    assert cmap.uncertainty == pytest.approx(0.008)
    assert cmap.offset == pytest.approx(1000.001)
    assert cmap.to_host(301.5) == pytest.approx(1301.5, abs=0.01)
    # The node was frozen 30 s without its clock noticing: host - kernel grew by 30 s.
    assert cmap.observe(1330.000, 300.00, 1330.010)
    assert cmap.jumps == 1
    assert cmap.offset == pytest.approx(1030.005, abs=0.006)
    cmap.reset()
    assert not cmap.ready and cmap.last_uptime is None


def test_clock_map_swaps_a_backwards_host_clock() -> None:
    cmap = ClockMap()
    cmap.observe(1100.2, 100.0, 1100.0)
    assert cmap.uncertainty == pytest.approx(0.105)


def lines(*items: tuple[float | None, str]) -> list[DmesgLine]:
    return [DmesgLine(s, t) for s, t in items]


def test_dedupe_returns_each_line_once() -> None:
    d = DmesgDedupe()
    poll1 = lines((1.0, "a"), (2.0, "b"), (2.0, "b"))
    assert d.new(poll1) == poll1
    assert d.new(poll1) == []
    poll2 = [*poll1, *lines((2.0, "b"), (3.0, "c"))]
    assert d.new(poll2) == lines((2.0, "b"), (3.0, "c"))
    # A line stored slightly out of stamp order (another CPU) is still new.
    poll3 = [*poll2, *lines((4.0, "d"), (3.5, "late"))]
    assert d.new(poll3) == lines((4.0, "d"), (3.5, "late"))
    # The ring buffer dropped its oldest lines: nothing new.
    assert d.new(poll3[3:]) == []
    d.reset()
    assert d.new(poll3) == poll3


def test_dedupe_of_unstamped_logs_uses_the_overlap() -> None:
    d = DmesgDedupe()

    def plain(*texts: str) -> list[DmesgLine]:
        return [DmesgLine(None, t, stamped=False) for t in texts]

    assert d.new(plain("a", "b")) == plain("a", "b")
    assert d.new(plain("a", "b", "c")) == plain("c")
    assert d.new(plain("b", "c", "d", "e")) == plain("d", "e")
    assert d.new(plain("x")) == plain("x")  # no overlap at all: all new


# -- DmesgPoller, order of work (scripted runner) ------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        self.now += 0.002
        return self.now


def test_poller_maps_stamps_and_adds_only_new_lines() -> None:
    outputs = [
        "100.00 1.00\n[   50.000000] old line\n",
        "100.00 1.00\n[   50.000000] old line\n"
        + "\n".join(
            f"[  {100.5 + i * 0.001:.6f}] {line.split('] ', 1)[1]}"
            for i, line in enumerate(KILL_SURVIVOR)
        ),
        "1.50 1.00\n[    0.500000] Linux version 6.1.0 (rebooted)\n",
    ]
    runner = FakeRunner([(r"^sh -c", lambda argv, data: (0, outputs.pop(0)))])
    tl = Timeline()
    clock = Clock()
    poller = DmesgPoller(runner, tl, "node2", clock=clock)
    assert poller.poll_once() == []  # the first poll only primes (backlog=False)
    added = poller.poll_once()
    assert [e.kind for e in added][:2] == [EventKind.O2NET_IDLE, EventKind.O2NET_LOST]
    assert len(added) == len(KILL_SURVIVOR)
    offset = poller.clock_map.offset
    assert offset == pytest.approx(5000.0 - 100.0, abs=0.02)
    assert added[0].time == pytest.approx(100.5 + offset)
    assert poller.clock_map.uncertainty < 0.01
    notes = tl.events(LabEventKind.NOTE)
    assert len(notes) == 1 and notes[0].lab is not None
    assert notes[0].lab.data["uncertainty"] == pytest.approx(poller.clock_map.uncertainty, abs=0.01)
    # The node rebooted: its new log is new, on a new mapping.
    rebooted = poller.poll_once()
    assert [e.text for e in rebooted] == ["Linux version 6.1.0 (rebooted)"]
    assert poller.reboots == 1
    assert rebooted[0].time == pytest.approx(clock.now - 1.0, abs=0.02)
    assert len(tl.events(LabEventKind.NOTE)) == 2
    assert runner.calls == [DMESG_COMMAND] * 3


def test_poller_thread_counts_failures_and_stops() -> None:
    runner = FakeRunner([(r"^sh -c", (1, ""))])
    tl = Timeline()
    poller = DmesgPoller(runner, tl, "node1", interval=0.05)
    with poller:
        assert poller.running
        deadline = time.monotonic() + 5
        while poller.failures < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert not poller.running
    assert poller.failures >= 3 and poller.polls == 0
    assert isinstance(poller.last_error, CommandFailed)
    assert poller.last_error.result.argv == DMESG_COMMAND
    assert len(tl) == 0


def test_poller_backlog_adds_the_first_poll() -> None:
    runner = FakeRunner([(r"^sh -c", (0, POLL))])
    tl = Timeline()
    DmesgPoller(runner, tl, "node1", backlog=True).poll_once()
    assert [e.kind for e in tl.events(source="kernel")] == [
        EventKind.UNKNOWN,
        EventKind.O2NET_IDLE,
        EventKind.UNKNOWN,
        EventKind.O2NET_LOST,
    ]


def test_feed_helper_closes(tmp_path: Path) -> None:
    tl = Timeline()
    console = feed(tl, "node1", [JOIN])
    assert console.events_added == 1
