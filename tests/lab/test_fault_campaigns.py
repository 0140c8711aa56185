"""Fault campaigns on a 3-VM o2cb cluster: partitions of any shape, a degraded link, a clock
step, several victims at once and the recovery master killed during recovery, each under history
workloads whose checkers judge what the survivors saw. (A seeded schedule:
tests/lab/test_example_fault_campaign.py.)

Each test prints what the kernels did (the timeline's kernel events during the fault);
docs/facts.md, "Fault campaigns", keeps what was seen. Every test leaves the cluster whole.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import pytest

from ocfs2lab.clusters import VmCluster
from ocfs2lab.experiment.history import HistoryWorkload
from ocfs2lab.experiment.nemesis import make_whole
from ocfs2lab.formats.kmsg import EventKind
from ocfs2lab.formats.ping import PingSummary, parse_ping
from ocfs2lab.observe.timeline import Expect, LabEventKind
from ocfs2lab.spec.history import HistorySpec
from ocfs2lab.wait import wait_until
from tests.support.clock import clock_error
from tests.support.histories import ops_done
from tests.support.leftovers import module_cluster

pytestmark = pytest.mark.lab

#: Kernel events worth printing for the facts.
TOLD = (
    EventKind.O2NET_IDLE,
    EventKind.O2NET_LOST,
    EventKind.O2NET_CONNECTED,
    EventKind.QUORUM_FENCE,
    EventKind.QUORUM_NO_FENCE,
    EventKind.DLM_EVICTED,
    EventKind.RECOVERY_MASTER,
    EventKind.RECOVERY_END,
    EventKind.JOURNAL_REPLAY_END,
    EventKind.FENCE_RESTART,
    EventKind.FENCE_PANIC,
)


@pytest.fixture(scope="module")
def campaign_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmCluster]:
    logs = tmp_path_factory.mktemp("campaign-logs")
    yield from module_cluster(VmCluster(3, name="campaign", log_dir=logs), logs)


@pytest.fixture
def cluster(campaign_cluster: VmCluster) -> Iterator[VmCluster]:
    """The module's cluster, made whole after each test, passed or failed, so that one
    test's failure does not become the next one's."""
    yield campaign_cluster
    make_whole(campaign_cluster)


def _told(cluster: VmCluster, since: float) -> list[tuple[str, str, int | None]]:
    """(node, kind, about) of the telling kernel events since ``since``, printed."""
    events = cluster.timeline.events(list(TOLD), since=since)
    for e in events:
        print(f"  +{e.time - since:6.1f} s {e.node:14s} {e.kind.value:18s} {e.text[:90]}")
    return [(e.node or "", e.kind.value, e.about) for e in events]


def _workloads(cluster: VmCluster, kinds: Sequence[HistorySpec]) -> list[HistoryWorkload]:
    return [HistoryWorkload(cluster.nodes, spec, timeline=cluster.timeline) for spec in kinds]


@contextlib.contextmanager
def _registers_and_log(cluster: VmCluster, *, seed: int) -> Iterator[list[HistoryWorkload]]:
    """Registers and an append log under flock on every node, each past its first 20
    operations."""
    specs = [
        HistorySpec("register", seed=seed),
        HistorySpec("append", seed=seed, append_lock="flock"),
    ]
    works = _workloads(cluster, specs)
    with contextlib.ExitStack() as stack:
        for work in works:
            stack.enter_context(work)
            ops_done(work, 20)
        yield works


def _all_valid(works: Sequence[HistoryWorkload]) -> None:
    for work in works:
        result = work.check()
        print(" ", result.summary(), work.history.counts())
        assert result.valid is True, result.anomalies[:3]


def _whole(cluster: VmCluster) -> None:
    revived, cycled = make_whole(cluster)
    print(f"  whole again; revived {revived}, power-cycled {cycled}")
    status = cluster.status()
    assert status.mounted == status.nodes and status.online == status.nodes


@pytest.mark.parametrize(
    "shape",
    ["groups 1,2 | 3", "link 1 - 3", "one way: 3 deaf to 1"],
)
def test_partition_shapes(cluster: VmCluster, shape: str) -> None:
    """Each shape held 30 s (past o2net's 10 s idle timeout and o2quo's decision at about
    28 s), healed, and the cluster made whole; registers stay linearizable."""
    splits = {
        "groups 1,2 | 3": lambda: cluster.split([[1, 2], [3]]),
        "link 1 - 3": lambda: cluster.split(between=(1, 3)),
        "one way: 3 deaf to 1": lambda: cluster.split(one_way=(1, 3)),
    }
    (work,) = _workloads(cluster, [HistorySpec("register", seed=11)])
    with work:
        ops_done(work, 20)
        with splits[shape]() as split:
            start = split.injected_at
            assert start is not None
            # The cut is real: a node it separates finds its o2net connection idle.
            cluster.timeline.expect(EventKind.O2NET_IDLE, timeout=60, after=start)
            wait_until(
                lambda: cluster.timeline.now() >= start + 30 or None,
                what="30 s of the split",
                timeout=60,
                interval=0.5,
            )
        print(f"{shape}:")
        told = _told(cluster, start)
        work.stop()
    _whole(cluster)
    if shape.startswith("groups"):
        # The lone node is connected to 1 node of 3: o2quo fences it, as a cut link does.
        assert ("ocfs2-node-3", "quorum_fence") in {(n, k) for n, k, _ in told}
    else:
        # Only nodes 1 and 3 are separated: node 2 never loses anyone.
        assert not [t for t in told if t[0] == "ocfs2-node-2" and t[1] == "o2net_idle"]
    result = work.check()
    print(" ", result.summary(), work.history.counts())
    assert result.valid is not False, result.anomalies[:3]


def test_degraded_link_of_node3(cluster: VmCluster) -> None:
    """Node 3's link loses 20% of packets each way, with 200 +- 50 ms of delay and 2%
    duplicates, outside its guest: pings from node 1 show the loss and the round trip
    (two crossings of the filter); the registers stay linearizable; afterwards the link is
    clean again."""
    target = str(cluster.node(3).spec.address)
    ping = ["ping", "-n", "-q", "-c", "40", "-i", "0.2", "-W", "3", target]

    def pinged() -> PingSummary:
        out = cluster.node(1).run(ping, check=False, timeout=120).stdout
        print("   ", out.strip().splitlines()[-2:])
        return parse_ping(out)

    before = pinged()
    (work,) = _workloads(cluster, [HistorySpec("register", seed=15)])
    with work:
        ops_done(work, 20)
        with cluster.degrade_link(
            3, loss_pct=20, delay_ms=200, jitter_ms=50, duplicate_pct=2
        ) as fault:
            start = fault.injected_at
            assert start is not None
            during = pinged()
            ops_done(work, 20, after=start)
        after = pinged()
        work.final_reads()
    print("degraded link of node 3:", before, during, after)
    told = _told(cluster, start)
    assert before.received == before.sent and after.received == after.sent
    assert before.rtt_avg_ms is not None and before.rtt_avg_ms < 100
    assert 0 < during.received < during.sent  # each reply crosses the filter twice
    assert during.rtt_min_ms is not None and during.rtt_min_ms >= 2 * (200 - 50) - 1
    assert after.rtt_avg_ms is not None and after.rtt_avg_ms < 100
    assert not [t for t in told if t[1] in ("o2net_lost", "dlm_evicted", "quorum_fence")]
    _all_valid([work])


def test_clock_step_of_node2(cluster: VmCluster) -> None:
    """Node 2's wall clock jumps 5 minutes ahead for 20 s: o2hb and o2net time with the
    monotonic clock, so nothing is evicted; registers stay linearizable; afterwards the
    clock is back within 1 s of the host's."""
    vm = cluster.vm(2)
    (work,) = _workloads(cluster, [HistorySpec("register", seed=12)])
    with work:
        ops_done(work, 20)
        with cluster.clock_step(2, 300) as step:
            assert step.injected_at is not None
            assert clock_error(vm) > 290
            ops_done(work, 20, after=step.injected_at)
        work.final_reads()
    print("clock step +300 s on node 2:")
    told = _told(cluster, step.injected_at)
    assert not [t for t in told if t[1] in ("o2net_lost", "dlm_evicted", "quorum_fence")]
    assert abs(clock_error(vm)) < 1.0
    _all_valid([work])
    _whole(cluster)


def test_several_victims_at_once(cluster: VmCluster) -> None:
    """Nodes 2 and 3 killed in the same moment: node 1 evicts both and replays both
    journals; the checkers pass on what it saw."""
    with _registers_and_log(cluster, seed=13) as works:
        with cluster.together(cluster.kill(2), cluster.kill(3)) as both:
            start = both.injected_at
            assert start is not None
            cluster.timeline.expect(
                Expect(EventKind.JOURNAL_REPLAY_END, node="ocfs2-node-1", about=2),
                Expect(EventKind.JOURNAL_REPLAY_END, node="ocfs2-node-1", about=3),
                timeout=240,
                after=start,
                ordered=False,
            )
            for work in works:
                ops_done(work, 10, after=cluster.timeline.now())
        for work in works:
            work.final_reads("ocfs2-node-1")
    kills = cluster.timeline.events(LabEventKind.FAULT_INJECTED, since=start - 1)
    assert len(kills) == 2 and abs(kills[0].time - kills[1].time) < 1.0
    print("nodes 2 and 3 killed together:")
    _told(cluster, start)
    _all_valid(works)
    _whole(cluster)


def test_recovery_master_killed_during_recovery(cluster: VmCluster) -> None:
    """Node 3 killed; the survivor that says it is the recovery master for node 3 is killed
    the moment it says so. The last node then recovers both; the checkers pass on what it
    saw, and fsck.ocfs2 -fn finds the volume clean."""
    with _registers_and_log(cluster, seed=14) as works:
        trigger = cluster.when(
            Expect(EventKind.RECOVERY_MASTER, about=3), lambda e: cluster.kill(e.node or "")
        )
        with trigger, cluster.kill(3) as first:
            start = first.injected_at
            assert start is not None
            assert trigger.wait(240), trigger.error
            assert trigger.event is not None
            master = trigger.event.node
            (last,) = [
                n.spec.name for n in cluster.nodes if n.spec.name not in (master, "ocfs2-node-3")
            ]
            assert master is not None
            number = cluster.node(master).spec.number
            cluster.timeline.expect(
                Expect(EventKind.JOURNAL_REPLAY_END, node=last, about=3),
                Expect(EventKind.JOURNAL_REPLAY_END, node=last, about=number),
                timeout=300,
                after=start,
                ordered=False,
            )
            for work in works:
                ops_done(work, 5, after=cluster.timeline.now())
        for work in works:
            work.final_reads(last)
    print(f"node 3 killed, then {master} the moment it became recovery master; {last} left:")
    _told(cluster, start)
    _all_valid(works)
    fsck = cluster.fsck()  # the survivor unmounts; the dead have nothing mounted
    print("  fsck.ocfs2 -fn:", fsck.exit_code, fsck.output.strip().splitlines()[-1:])
    assert fsck.clean, fsck.output
    assert cluster.volume is not None
    cluster.volume.mount(cluster.node(last))
    _whole(cluster)
