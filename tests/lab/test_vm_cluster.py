"""A real 3-node cluster of QEMU VMs, one kernel each: faults and what the kernels did.

One cluster serves the whole module (booting three emulated VMs takes over a minute);
each fault test revives the victim afterwards, so the next test starts whole. After the
module, nothing of the cluster may remain: no QEMU process, overlay, switch or socket.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ocfs2lab.clusters import RESTORED_COUNTERS, VM_TIMING, VmCluster
from ocfs2lab.consistency import Outcome
from ocfs2lab.experiment import RecoveryExperiment, RecoveryReport
from ocfs2lab.experiment.history import HistoryWorkload
from ocfs2lab.formats.gcovr import parse_summary
from ocfs2lab.formats.iproute import link_by_mac, parse_links
from ocfs2lab.formats.kmsg import EventKind
from ocfs2lab.observe.timeline import Expect, LabEventKind, Timeline
from ocfs2lab.spec.history import HistorySpec
from tests.support.clock import clock_error
from tests.support.examples import probe_line
from tests.support.histories import ops_done
from tests.support.leftovers import module_cluster
from tests.support.locks import holding_fcntl_lock, try_fcntl_lock

pytestmark = pytest.mark.lab

VICTIM = "ocfs2-node-3"


@pytest.fixture(scope="module")
def vm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmCluster]:
    logs = tmp_path_factory.mktemp("vmcluster-logs")
    yield from module_cluster(VmCluster(3, name="vmlab", log_dir=logs), logs)


@pytest.fixture
def cluster(vm_cluster: VmCluster, request: pytest.FixtureRequest) -> Iterator[VmCluster]:
    """The module's cluster; its kernels must log no BUG, oops, WARNING or hung task."""
    start = vm_cluster.timeline.now()
    yield vm_cluster
    if not request.session.testsfailed:
        vm_cluster.timeline.assert_no_kernel_errors(since=start)


def test_three_vms_mount_and_files_cross(cluster: VmCluster) -> None:
    status = cluster.status()
    assert status.nodes == ("ocfs2-node-1", "ocfs2-node-2", VICTIM)
    assert status.kernel_nodes == 3  # one kernel per node
    assert status.online == status.nodes and status.mounted == status.nodes
    assert status.note == ""
    boot_ids = {n.boot_id() for n in cluster.nodes}
    assert len(boot_ids) == 3
    n1, n2, n3 = cluster.nodes
    n1.put_file("/mnt/ocfs2/from-1", b"written on node 1\n")
    n3.put_file("/mnt/ocfs2/from-3", b"written on node 3\n")
    assert n3.get_file("/mnt/ocfs2/from-1") == b"written on node 1\n"
    assert n2.get_file("/mnt/ocfs2/from-3") == b"written on node 3\n"
    # Every node mounted in a slot of its own, as its kernel said on the console.
    mounts = cluster.timeline.events(EventKind.OCFS2_MOUNT)
    assert {e.node for e in mounts} >= set(status.nodes)
    slots = {e.node: e.kernel.slot for e in mounts if e.kernel is not None}
    assert len(set(slots.values())) == 3
    # The interconnect is the lab's own: each node has its address on the NIC we gave it.
    for node in cluster.vms:
        assert node.check_interconnect(cluster.spec.network) == node.interface


def test_fcntl_locks_are_node_local_on_o2cb(cluster: VmCluster) -> None:
    """ocfs2(7): on o2cb, fcntl locks are local to the node; node 2 takes the lock node 1
    holds (on pcmk it cannot: tests/lab/test_pcmk.py)."""
    n1, n2, _ = cluster.nodes
    with holding_fcntl_lock(n1):
        assert try_fcntl_lock(n2) == "got"


def test_checkers_find_fcntl_overlaps_and_lost_o_append_records(cluster: VmCluster) -> None:
    """The checkers' positive controls, with no fault at all.

    * fcntl locks are node-local on o2cb (ocfs2(7)): two nodes are inside "the" lock at
      once; the mutex checker says so and shows the overlapping pairs.
    * Plain O_APPEND writes from every node: OCFS2 takes the append offset from the
      node's cached file size before its cluster lock refreshes it, so appends from two
      nodes land at one offset and one record overwrites the other (docs/facts.md). The
      append checker finds records gone that were acknowledged, reads that are no prefix of
      later ones, and sometimes torn lines.
    """
    fcntl = HistoryWorkload(cluster.nodes, HistorySpec("fcntl", keys=1, hold_s=0.2))
    append = HistoryWorkload(cluster.nodes, HistorySpec("append", seed=3))
    with fcntl, append:
        ops_done(fcntl, 30)
        ops_done(append, 100)
        fcntl.final_reads()
        append.final_reads()
    for work in (fcntl, append):
        result = work.check()
        print(result.summary())
        for anomaly in result.anomalies[:3]:
            print(" ", anomaly.kind, anomaly.text[:400])
        assert result.valid is False
    mutex = fcntl.check()
    overlap = next(a for a in mutex.anomalies if a.kind == "overlap")
    ops = {op.index: op for op in fcntl.history}
    first, second = (ops[i] for i in overlap.ops)
    assert first.node != second.node  # two nodes, each holding its own node's lock
    assert first.value[0] == second.value[0]
    assert "lost-update" in {x.kind for x in mutex.anomalies}
    kinds = {x.kind for x in append.check().anomalies}
    # Two records written at one offset: one is gone, or, of different lengths, the longer
    # one's tail stays behind the shorter one as a torn line.
    assert kinds <= {"lost-append", "not-a-prefix", "torn-record"}, kinds
    assert "lost-append" in kinds, kinds


def test_checkers_under_a_kill(cluster: VmCluster) -> None:
    """Registers, an append log and a flock counter, all at once on every node while
    node 3 is killed: on the survivors every checker passes (OCFS2's coherence promise
    held through the recovery), and node 3's last operations are unknown. The appends
    hold a flock (plain O_APPEND from several nodes loses records even without a fault:
    the test above)."""
    specs = [
        HistorySpec("register", seed=7),
        HistorySpec("append", seed=7, append_lock="flock"),
        HistorySpec("flock", seed=7),
    ]
    works = [HistoryWorkload(cluster.nodes, s, timeline=cluster.timeline) for s in specs]
    for work in works:
        work.__enter__()
    try:
        for work in works:
            ops_done(work, 20)
        with cluster.kill(3) as fault:
            # Whichever survivor is the recovery master replays node 3's journal.
            cluster.timeline.expect(
                Expect(EventKind.JOURNAL_REPLAY_END), timeout=180, after=fault.injected_at
            )
            for work in works:  # the survivors go on after the recovery
                ops_done(work, 10, after=cluster.timeline.now())
        for work in works:
            work.final_reads("ocfs2-node-1")
    finally:
        for work in works:
            work.close()
    for work in works:
        result = work.check()
        counts = work.history.counts()
        print(result.summary(), counts)
        assert result.valid is True, result.anomalies[:5]
        assert counts["ok"] >= 40
        victim_ops = [op for op in work.history if op.node == VICTIM]
        assert victim_ops and victim_ops[-1].outcome is Outcome.UNKNOWN
    cluster.revive(3)
    _whole_again(cluster)


def test_coverage_of_three_kernels_is_merged(cluster: VmCluster, tmp_path: Path) -> None:
    """Each VM is a kernel of its own: their counters are read one by one and added up."""
    coverage = cluster.coverage()
    coverage.reset()
    workload = cluster.run_workload(report_root=tmp_path)
    workload.raise_if_failed()
    n1 = cluster.nodes[0]
    n1.run(["o2probe", "write", "/mnt/ocfs2/probe", "16"])
    n1.run(["o2probe", "verify", "/mnt/ocfs2/probe", "16"])
    assert workload.report_dir is not None
    report = coverage.report(workload.report_dir)
    names = tuple(n.spec.name for n in cluster.nodes)
    assert report.targets["kernel"] == names
    assert report.html("kernel").is_file() and report.html("tools").is_file()
    kernel = report["kernel"]
    assert kernel.file("fs/ocfs2/super.c").lines_covered > 0
    assert kernel.under("fs/ocfs2/dlm").lines_covered > 0
    # Merged: at least as many lines as any one kernel reached.
    for name in names:
        alone = parse_summary(
            (workload.report_dir / f"kernel_summary.{name}.json").read_text(), name
        )
        assert alone.total.lines_covered > 0
        assert kernel.total.lines_covered >= alone.total.lines_covered
    assert report.gcda_files["kernel"] >= 3 * 10
    # The report says what a restored kernel's counters hold, and how each node started.
    assert report.provenance["kernel"]["counters"] == RESTORED_COUNTERS
    assert set(report.provenance["kernel"]["starts"]) == set(names)
    # The probe ran on node 1 only: only its data, write and verify but not statfs.
    assert report.targets["tools"] == (names[0],)
    counts = report.line_counts("tools")["o2probe.c"]
    assert counts[probe_line("wrote %ld blocks")] == 1
    assert counts[probe_line("if (statfs(path, &st) != 0)")] == 0
    print(report.one_line())


def test_timing_knobs_are_set_on_every_node(cluster: VmCluster) -> None:
    assert cluster.o2cb is not None
    wanted = {
        "dead_threshold": VM_TIMING.dead_threshold,
        "idle_timeout_ms": VM_TIMING.idle_timeout_ms,
        "keepalive_delay_ms": VM_TIMING.keepalive_delay_ms,
        "reconnect_delay_ms": VM_TIMING.reconnect_delay_ms,
    }
    for node in cluster.nodes:
        assert cluster.o2cb.read_timing(node) == wanted


def _check_report_against_events(
    cluster: VmCluster, report: RecoveryReport, *, writes: bool = True
) -> None:
    """The report's figures are the times of the kernel events on the timeline; with
    ``writes``, nothing acknowledged was lost."""
    survivors = set(report.survivors)
    t = report.times
    evicted = cluster.timeline.first(
        Expect(EventKind.DLM_EVICTED, about=3, where=lambda e: e.node in survivors),
        after=report.fault_time,
    )
    assert evicted is not None and t.evicted == pytest.approx(evicted.time - report.fault_time)
    replay = cluster.timeline.first(
        Expect(EventKind.JOURNAL_REPLAY_END, about=3, where=lambda e: e.node in survivors),
        after=report.fault_time,
    )
    assert replay is not None and t.replay_end == pytest.approx(replay.time - report.fault_time)
    assert t.replayed_by == replay.node
    fault = cluster.timeline.first(
        Expect(LabEventKind.FAULT_INJECTED, node=VICTIM), after=report.fault_time - 0.001
    )
    assert fault is not None and fault.time == pytest.approx(report.fault_time)
    assert t.complete and t.in_order
    assert t.recovery_master in survivors
    assert set(report.max_stall) == survivors
    if not writes:
        return
    # Nothing acknowledged was lost, on a survivor and on the revived victim.
    assert report.writes.acknowledged > 0 and report.writes.ok, report.writes.summary()
    assert report.writes_after_revive is not None and report.writes_after_revive.ok
    assert report.lost_writes == 0
    assert all(v is not None and v > 0 for v in report.max_stall.values())


def _whole_again(cluster: VmCluster) -> None:
    status = cluster.status()
    assert status.mounted == status.nodes and status.kernel_nodes == 3


def test_nodes_are_restored_with_their_own_identity(cluster: VmCluster) -> None:
    """The nodes started from saved states (saved by the first start of each node identity,
    in this run or an earlier one); each has its own name, MAC, address, machine id and
    kernel identity, and the host's time."""
    machine_ids = set()
    for vm in cluster.vms:
        assert vm.machine is not None
        assert vm.restored, vm.machine.start_note
        assert vm.run(["hostname"]).stdout.strip() == vm.spec.name
        link = link_by_mac(parse_links(vm.run(["ip", "-j", "link"]).stdout), vm.mac)
        assert link is not None and link.name == vm.interface
        assert vm.check_interconnect(cluster.spec.network) == vm.interface
        assert abs(clock_error(vm)) < 1.0
        machine_ids.add(vm.run(["cat", "/etc/machine-id"]).stdout.strip())
        assert vm.boot_id().endswith("/" + vm.machine.instance)
    assert len(machine_ids) == 3
    assert len({vm.boot_id() for vm in cluster.vms}) == 3
    starts = [
        e
        for e in cluster.timeline.events(LabEventKind.NOTE)
        if e.lab is not None and e.lab.data.get("restored")
    ]
    assert {e.node for e in starts} >= {vm.spec.name for vm in cluster.vms}


def test_kill_and_a_restored_revive(cluster: VmCluster) -> None:
    vm = cluster.vm(3)
    assert vm.machine is not None
    before, first_life = vm.boot_id(), vm.machine.instance
    report = RecoveryExperiment(cluster, fault="kill", victim=3).run_once()
    assert report.victim_fate == "killed"
    _check_report_against_events(cluster, report)
    assert vm.restored and vm.machine is not None and vm.machine.instance != first_life
    assert vm.boot_id() != before  # a revived node is a new kernel, though from one state
    assert abs(clock_error(vm)) < 1.0
    assert report.writes_after_revive is not None and report.revive_error is None
    print(report.summary(), vm.machine.start_note)
    _whole_again(cluster)


def test_partition_of_node3_fences_node3(cluster: VmCluster) -> None:
    report = RecoveryExperiment(cluster, fault="partition", victim=3).run_once()
    # Cut off, node 3 is connected to 1 node of 3: o2quo fences it; the others, connected
    # to each other and to the lowest node, do not fence.
    assert VICTIM in report.times.fenced
    assert not set(report.times.fenced) & set(report.survivors)
    assert report.victim_fate == "fenced"
    decision = cluster.timeline.first(
        Expect(EventKind.QUORUM_FENCE, node=VICTIM), after=report.fault_time
    )
    assert decision is not None and decision.kernel is not None
    kept = cluster.timeline.events(
        EventKind.QUORUM_NO_FENCE, node=list(report.survivors), since=report.fault_time
    )
    assert {e.node for e in kept} == set(report.survivors)
    _check_report_against_events(cluster, report)
    _whole_again(cluster)


def test_disk_stall_of_node3(cluster: VmCluster) -> None:
    report = RecoveryExperiment(cluster, fault="disk_stall", victim=3).run_once()
    # Node 3's heartbeat writes hang: past the write timeout ((dead_threshold - 1) x 2 s)
    # its own kernel fences it.
    timeout = cluster.timeline.first(
        Expect(EventKind.O2HB_WRITE_TIMEOUT, node=VICTIM), after=report.fault_time
    )
    assert timeout is not None and timeout.kernel is not None
    assert timeout.kernel.duration_ms is not None
    assert timeout.kernel.duration_ms >= (VM_TIMING.dead_threshold - 1) * 2000
    assert VICTIM in report.times.fenced and report.victim_fate == "fenced"
    assert report.writes.ok and report.lost_writes == 0
    # What the survivors did is reported as seen (all steps, or which are missing).
    print(report.summary())
    _whole_again(cluster)


def test_freeze_of_node3(cluster: VmCluster) -> None:
    report = RecoveryExperiment(cluster, fault="freeze", victim=3).run_once()
    # While node 3 is frozen its heartbeat stops: the survivors evict it and replay its
    # journal. What it does when thawed is the kernel's call; the report says which, and
    # whether writes it acknowledged after its eviction survived.
    _check_report_against_events(cluster, report, writes=False)
    assert report.victim_fate in ("fenced", "evicted_running", "survived")
    replay_end = report.times.replay_end
    assert replay_end is not None
    assert report.healed_after is not None and report.healed_after > replay_end
    healed = cluster.timeline.first(
        Expect(LabEventKind.FAULT_HEALED, node=VICTIM), after=report.fault_time
    )
    assert healed is not None
    if report.victim_fate == "evicted_running":
        # Thawed, node 3 ran on with a mount whose journal another node had replayed; the
        # experiment power-cycled it. If it could not mount again, the report says why and
        # the volume was repaired with fsck.ocfs2 -fy.
        assert report.writes_after_revive is not None
        if report.revive_error is not None:
            assert report.repair is not None and report.repair.exit_code in (0, 1)
    print(report.summary(), dict(report.times.dlm_errors), report.revive_error)
    _whole_again(cluster)


def test_the_timeline_exports(cluster: VmCluster, tmp_path: Path) -> None:
    frame = cluster.timeline.to_dataframe()
    assert set(frame["node"].dropna()) >= {"ocfs2-node-1", "ocfs2-node-2", VICTIM}
    assert (frame["kind"] == "fault_injected").sum() >= 1
    unknown = frame[frame["kind"] == "unknown"]
    assert len(unknown) > 0  # unknown kernel lines are kept, not dropped
    figure = cluster.timeline.plot()
    lanes = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert {"ocfs2-node-1", "ocfs2-node-2", VICTIM} <= set(lanes)
    out = cluster.timeline.save_jsonl(tmp_path / "timeline.jsonl")
    back = Timeline.load_jsonl(out)
    events = cluster.timeline.events()
    assert len(back.events()) == len(events) > 0
    assert [(e.kind, e.node, e.text) for e in back.events()] == [
        (e.kind, e.node, e.text) for e in events
    ]
