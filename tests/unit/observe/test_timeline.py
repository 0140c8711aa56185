"""Timeline: one clock, queries, and expect() on the measured kill and partition sequences."""

from __future__ import annotations

import threading
import time

import pytest

from ocfs2lab.errors import Ocfs2LabError, WaitTimeout
from ocfs2lab.observe import (
    ConsoleFeed,
    EventKind,
    Expect,
    ExpectTimeout,
    ForbiddenEvent,
    KernelErrorsFound,
    LabEventKind,
    Timeline,
    TimelineError,
)

from .conftest import (
    BUG_LINE,
    DOMAIN,
    KILL_SURVIVOR,
    NOISE,
    PARTITION_NODE1,
    PARTITION_NODE2,
    T0,
    feed,
)

KILL_ORDER = [
    EventKind.O2NET_LOST,
    EventKind.DLM_EVICTED,
    EventKind.RECOVERY_BEGIN,
    EventKind.RECOVERY_END,
    EventKind.JOURNAL_REPLAY_BEGIN,
    EventKind.JOURNAL_REPLAY_END,
]


def kill_timeline() -> Timeline:
    tl = Timeline(origin=T0 - 10)
    tl.record(LabEventKind.FAULT_INJECTED, "kill", node="node2", time=T0 - 5)
    feed(tl, "node1", KILL_SURVIVOR)
    return tl


# -- appending and reading ---------------------------------------------------------------


def test_console_feed_stamps_every_line_with_its_host_time() -> None:
    tl = kill_timeline()
    kernel = tl.events(source="kernel")
    assert [e.kind for e in kernel] == [
        EventKind.O2NET_IDLE,
        EventKind.O2NET_LOST,
        EventKind.DLM_EVICTED,
        EventKind.RECOVERY_BEGIN,
        EventKind.RECOVERY_MASTER,
        EventKind.RECOVERY_END,
        EventKind.JOURNAL_REPLAY_BEGIN,
        EventKind.JOURNAL_REPLAY_END,
    ]
    assert [e.time for e in kernel] == [T0 + 0.25 * i for i in range(8)]
    assert {e.node for e in kernel} == {"node1"}
    assert kernel[2].about == 2 and kernel[2].kernel is not None
    assert kernel[2].kernel.domain == DOMAIN
    assert kernel[4].kernel is not None and kernel[4].kernel.master == 1
    assert tl.events()[0].kind is LabEventKind.FAULT_INJECTED  # time order, lab first


def test_unknown_lines_are_kept() -> None:
    tl = Timeline()
    feed(tl, "node1", [*NOISE, "random words", "   ", ""])
    kinds = [e.kind for e in tl]
    assert kinds == [EventKind.UNKNOWN, EventKind.O2HB_WRITE_HUNG, EventKind.UNKNOWN]
    assert tl.events()[2].text == "random words"
    assert tl.errors() == []


def test_queries_filter_by_kind_node_and_time() -> None:
    tl = Timeline(origin=T0)
    feed(tl, "node1", PARTITION_NODE1)
    feed(tl, "node2", PARTITION_NODE2, start=T0 + 0.1)
    assert tl.nodes == ["node1", "node2"]
    idle = tl.events(EventKind.O2NET_IDLE)
    assert [e.node for e in idle] == ["node1", "node2"]
    assert (
        tl.events([EventKind.QUORUM_FENCE, EventKind.FENCE_RESTART], node="node2")
        == (tl.events(node="node2")[1:])
    )
    assert tl.events(since=T0 + 0.2, until=T0 + 0.4) == tl.events()[2:4]
    first = tl.first(EventKind.O2NET_IDLE, after=T0 + 0.05)
    assert first is not None and first.node == "node2"
    assert tl.first(Expect(EventKind.O2NET_IDLE, about=2)) == idle[0]
    assert tl.first(EventKind.KERNEL_BUG) is None
    last = tl.last(EventKind.O2NET_IDLE)
    assert last is not None and last.node == "node2"
    assert len(tl) == len(PARTITION_NODE1) + len(PARTITION_NODE2)
    fence = tl.first(EventKind.QUORUM_FENCE)
    assert fence is not None and not fence.is_error and fence.subsystem == "o2quo"


def test_events_appended_late_with_older_times_go_in_their_place() -> None:
    tl = Timeline()
    tl.record(LabEventKind.NOTE, "b", time=20.0)
    tl.record(LabEventKind.NOTE, "c", time=30.0)
    tl.record(LabEventKind.NOTE, "a", time=10.0)
    tl.record(LabEventKind.NOTE, "b2", time=20.0)
    assert [e.text for e in tl] == ["a", "b", "b2", "c"]
    assert tl.events(since=20.0, until=30.0)[-1].text == "b2"


def test_concurrent_appends_are_all_kept_in_order() -> None:
    tl = Timeline()

    def writer(node: str) -> None:
        console = ConsoleFeed(tl, node)
        for i in range(500):
            console(1000.0 + i * 0.001, f"line {i} of {node}")

    threads = [threading.Thread(target=writer, args=(f"node{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = tl.events()
    assert len(events) == 2000
    assert [e.time for e in events] == sorted(e.time for e in events)
    for n in range(4):
        mine = [e.text for e in tl.events(node=f"node{n}")]
        assert mine == [f"line {i} of node{n}" for i in range(500)]


def test_phase_records_begin_and_end_with_duration_and_error() -> None:
    ticks = iter([100.0, 102.5, 200.0, 200.75])  # a clock read at each begin and end
    tl = Timeline(origin=0.0, clock=lambda: next(ticks))
    with tl.phase("warm up", node="node1") as begin:
        assert begin.kind is LabEventKind.PHASE_BEGIN and begin.time == 100.0
    with pytest.raises(RuntimeError), tl.phase("fault"):
        raise RuntimeError("boom")
    ends = tl.events(LabEventKind.PHASE_END)
    assert [e.text for e in ends] == ["warm up", "fault"]
    assert [e.time for e in ends] == [102.5, 200.75]
    assert ends[0].lab is not None and ends[0].lab.data == {"duration": 2.5}
    assert ends[0].node == "node1"
    assert ends[1].lab is not None and ends[1].lab.data["duration"] == 0.75
    assert ends[1].lab.data["error"] == "RuntimeError: boom"


# -- expect ------------------------------------------------------------------------------


def test_expect_succeeds_on_the_kill_sequence_in_order() -> None:
    tl = kill_timeline()
    start = time.monotonic()
    found = tl.expect(*KILL_ORDER, node="node1", after=T0 - 5, timeout=5)
    assert time.monotonic() - start < 0.5
    assert [e.kind for e in found] == KILL_ORDER
    assert [e.time for e in found] == sorted(e.time for e in found)
    assert found[0].about == 2
    replay = found[-1].kernel
    assert replay is not None and replay.slot == 1 and replay.node == 2


def test_expect_with_per_node_steps_on_the_partition() -> None:
    tl = Timeline(origin=T0)
    feed(tl, "node2", PARTITION_NODE2, start=T0)
    feed(tl, "node1", PARTITION_NODE1, start=T0 + 0.1, step=0.5)
    fence, restart, evicted, end = tl.expect(
        Expect(EventKind.QUORUM_FENCE, node="node2"),
        Expect(EventKind.FENCE_RESTART, node="node2"),
        Expect(EventKind.DLM_EVICTED, node="node1", about=2),
        Expect(EventKind.JOURNAL_REPLAY_END, node="node1", about=2),
        timeout=1,
    )
    assert fence.kernel is not None and fence.kernel.lowest == 1
    assert fence.kernel.mlog is not None and fence.kernel.mlog.error
    assert restart.time > fence.time
    assert evicted.time < end.time
    # The survivor decided not to fence; its decision is on its own lane.
    no_fence = tl.first(EventKind.QUORUM_NO_FENCE)
    assert no_fence is not None and no_fence.node == "node1"


def test_expect_order_matters() -> None:
    tl = kill_timeline()
    with pytest.raises(ExpectTimeout) as info:
        tl.expect(EventKind.RECOVERY_END, EventKind.DLM_EVICTED, node="node1", timeout=0.1)
    assert [e.kind for e in info.value.matched] == [EventKind.RECOVERY_END]
    # Unordered: both are there.
    found = tl.expect(
        EventKind.RECOVERY_END, EventKind.DLM_EVICTED, node="node1", timeout=0.1, ordered=False
    )
    assert [e.kind for e in found] == [EventKind.DLM_EVICTED, EventKind.RECOVERY_END]


def test_expect_ignores_events_before_after() -> None:
    tl = kill_timeline()
    with pytest.raises(ExpectTimeout):
        tl.expect(EventKind.O2NET_LOST, after=T0 + 10, timeout=0.05)


def test_expect_is_woken_by_events_from_another_thread() -> None:
    tl = Timeline()
    console = ConsoleFeed(tl, "node1")
    started = threading.Event()
    fed_at: list[float] = []

    def later() -> None:
        started.wait(5)
        for i, line in enumerate(KILL_SURVIVOR):
            console(T0 + i, line)
        fed_at.append(time.monotonic())

    thread = threading.Thread(target=later)
    thread.start()
    started.set()
    found = tl.expect(*KILL_ORDER, timeout=10)
    woke = time.monotonic()
    thread.join()
    assert len(found) == len(KILL_ORDER)
    assert woke - fed_at[0] < 0.5  # woken, not polled on a slow interval


def test_expect_fails_fast_on_a_kernel_bug() -> None:
    tl = Timeline(origin=T0)
    feed(tl, "node1", [*KILL_SURVIVOR[:3], BUG_LINE, *KILL_SURVIVOR[3:]])
    start = time.monotonic()
    with pytest.raises(ForbiddenEvent) as info:
        tl.expect(*KILL_ORDER, node="node1", timeout=30)
    assert time.monotonic() - start < 1.0
    err = info.value
    assert isinstance(err, TimelineError) and isinstance(err, Ocfs2LabError)
    assert err.event.kind is EventKind.KERNEL_BUG and err.event.is_error
    assert [e.kind for e in err.matched] == [EventKind.O2NET_LOST, EventKind.DLM_EVICTED]
    assert "kernel BUG at fs/ocfs2/dlmglue.c:3324!" in str(err)
    assert err.tail[-1] == err.event
    assert "dlm_evicted" in err.tail_text
    assert "what to do" in str(err)


def test_expect_fails_fast_on_a_bug_that_arrives_while_waiting() -> None:
    tl = Timeline()
    console = ConsoleFeed(tl, "node2")
    timer = threading.Timer(0.1, console, args=(T0, BUG_LINE))
    timer.start()
    start = time.monotonic()
    with pytest.raises(ForbiddenEvent):
        tl.expect(EventKind.RECOVERY_END, timeout=30)
    assert time.monotonic() - start < 2.0
    timer.join()


def test_an_expected_error_is_not_forbidden_and_forbid_can_be_changed() -> None:
    tl = Timeline()
    feed(tl, "node1", [BUG_LINE, *KILL_SURVIVOR])
    [bug] = tl.expect(EventKind.KERNEL_BUG, timeout=0.1)
    assert bug.kernel is not None and bug.kernel.location == "fs/ocfs2/dlmglue.c:3324"
    tl.expect(EventKind.RECOVERY_END, timeout=0.1, forbid=())
    with pytest.raises(ForbiddenEvent) as info:
        tl.expect(
            EventKind.RECOVERY_END, timeout=0.1, forbid=[Expect(EventKind.DLM_EVICTED, about=2)]
        )
    assert info.value.event.kind is EventKind.DLM_EVICTED
    assert "forbidden event" in str(info.value)


def test_expect_times_out_with_a_clear_message() -> None:
    tl = kill_timeline()
    start = time.monotonic()
    with pytest.raises(ExpectTimeout) as info:
        tl.expect(
            EventKind.O2NET_LOST,
            EventKind.DLM_EVICTED,
            Expect(EventKind.FENCE_RESTART, node="node2"),
            node="node1",
            timeout=0.3,
        )
    assert 0.3 <= time.monotonic() - start < 2.0
    err = info.value
    assert isinstance(err, WaitTimeout) and isinstance(err, TimelineError)
    assert err.timeout == 0.3
    assert [e.kind for e in err.matched] == [EventKind.O2NET_LOST, EventKind.DLM_EVICTED]
    assert [s.kind for s in err.missing] == [EventKind.FENCE_RESTART]
    text = str(err)
    assert "gave up after 0.3 s" in text
    assert "2 of 3 steps seen" in text
    assert "still missing: fence_restart on node2" in text
    assert "journal_replay_end" in text  # the tail shows what came instead
    assert "what to do" in text


def test_expect_restarts_when_an_older_event_is_inserted() -> None:
    tl = Timeline()
    tl.record(LabEventKind.NOTE, "late", node="node1", time=T0 + 10)

    def deliver_older() -> None:
        # A polled source delivers events stamped before the one already there.
        feed(tl, "node1", KILL_SURVIVOR, start=T0, step=0.1)

    timer = threading.Timer(0.1, deliver_older)
    timer.start()
    found = tl.expect(*KILL_ORDER, LabEventKind.NOTE, timeout=5)
    timer.join()
    assert found[-1].text == "late"


def test_expect_needs_a_step() -> None:
    with pytest.raises(TypeError):
        Timeline().expect(timeout=1)


def test_kinds_may_be_given_by_value() -> None:
    tl = kill_timeline()
    assert tl.events("o2net_lost") == tl.events(EventKind.O2NET_LOST)
    assert tl.events(["fault_injected", EventKind.RECOVERY_END])[0].node == "node2"
    found = tl.expect("o2net_lost", "recovery_end", node="node1", timeout=1)
    assert [e.kind for e in found] == [EventKind.O2NET_LOST, EventKind.RECOVERY_END]
    fault = tl.first("fault_injected")
    assert fault is not None and fault.kind is LabEventKind.FAULT_INJECTED
    lost = tl.first("o2net_lost")
    assert lost is not None and lost.kind is EventKind.O2NET_LOST
    with pytest.raises(ValueError, match="not an event kind"):
        tl.events("o2net_lots")


# -- errors ------------------------------------------------------------------------------


def test_errors_and_assert_no_kernel_errors() -> None:
    tl = Timeline()
    feed(tl, "node1", KILL_SURVIVOR)
    tl.assert_no_kernel_errors()
    hung = "[  720.000009] INFO: task dd:4242 blocked for more than 120 seconds."
    feed(tl, "node2", [BUG_LINE, hung], start=T0 + 100)
    assert [e.kind for e in tl.errors()] == [EventKind.KERNEL_BUG, EventKind.HUNG_TASK]
    assert tl.errors(node="node1") == []
    with pytest.raises(KernelErrorsFound) as info:
        tl.assert_no_kernel_errors()
    assert len(info.value.errors) == 2
    assert "dlmglue.c:3324" in str(info.value)
    tl.assert_no_kernel_errors(allow=[EventKind.KERNEL_BUG, "INFO: task dd:"])
    tl.assert_no_kernel_errors(allow=[Expect(EventKind.KERNEL_BUG), EventKind.HUNG_TASK])
    tl.assert_no_kernel_errors(node="node1")
    tl.assert_no_kernel_errors(since=T0 + 200)
    with pytest.raises(KernelErrorsFound):
        tl.assert_no_kernel_errors(allow=[EventKind.KERNEL_BUG])
