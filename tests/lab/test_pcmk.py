"""A real 3-VM cluster on the userspace stack: corosync, dlm_controld and the kernel's fs/dlm.

One cluster serves the module. A kill and a partition of node 3 each show the stack's whole
chain on the timeline (the survivors' membership, the lab's fence, fs/dlm's recovery, the
journal replay), lose no acknowledged write, and end with node 3 revived and mounted. fcntl
locks, node-local on o2cb, are cluster-wide here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ocfs2lab.clusters import VmCluster
from ocfs2lab.experiment import RecoveryExperiment, RecoveryReport
from ocfs2lab.formats.kmsg import EventKind
from ocfs2lab.observe.timeline import LabEventKind, TimelineEvent
from ocfs2lab.wait import wait_until
from tests.support.leftovers import module_cluster
from tests.support.locks import holding_fcntl_lock, try_fcntl_lock

pytestmark = pytest.mark.lab

VICTIM = "ocfs2-node-3"


@pytest.fixture(scope="module")
def pcmk_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmCluster]:
    logs = tmp_path_factory.mktemp("pcmk-logs")
    yield from module_cluster(VmCluster(3, name="pcmklab", log_dir=logs, stack="pcmk"), logs)


@pytest.fixture
def cluster(pcmk_cluster: VmCluster, request: pytest.FixtureRequest) -> Iterator[VmCluster]:
    """The module's cluster; its kernels must log no BUG, oops, WARNING or hung task."""
    start = pcmk_cluster.timeline.now()
    yield pcmk_cluster
    if not request.session.testsfailed:
        pcmk_cluster.timeline.assert_no_kernel_errors(since=start)


def test_pcmk_cluster_mounts_and_files_cross(cluster: VmCluster) -> None:
    status = cluster.status()
    assert status.online == status.nodes and status.mounted == status.nodes
    assert status.kernel_nodes == 3
    assert cluster.o2cb is None and cluster.heartbeat is None and cluster.pcmk is not None
    assert cluster.volume is not None
    uuid = cluster.volume.uuid()
    for node in cluster.nodes:
        assert node.run(["cat", "/sys/fs/ocfs2/cluster_stack"]).stdout.strip() == "pcmk"
        # The volume's lockspace, named by its UUID, in the kernel's DLM.
        lockspaces = node.run(["dlm_tool", "ls"]).stdout
        assert uuid.upper() in lockspaces.upper(), lockspaces
        quorum = cluster.pcmk.quorum(node)
        assert quorum is not None and quorum.quorate and quorum.members == (1, 2, 3)
    n1, _, n3 = cluster.nodes
    n1.put_file("/mnt/ocfs2/pcmk-from-1", b"written on node 1\n")
    n3.put_file("/mnt/ocfs2/pcmk-from-3", b"written on node 3\n")
    assert n3.get_file("/mnt/ocfs2/pcmk-from-1") == b"written on node 1\n"
    assert n1.get_file("/mnt/ocfs2/pcmk-from-3") == b"written on node 3\n"
    # The daemons' messages reached the timeline through the kernel log: corosync's
    # membership of all three, on every node.
    members = cluster.timeline.events(EventKind.COROSYNC_MEMBERS)
    assert {e.node for e in members if e.kernel and e.kernel.members == (1, 2, 3)} == set(
        status.nodes
    )
    assert cluster.timeline.events(EventKind.FSDLM_JOINED)


def test_fcntl_locks_are_cluster_wide(cluster: VmCluster) -> None:
    """On o2cb, fcntl locks are node-local (ocfs2(7)); on pcmk fs/dlm's plocks make them
    cluster-wide: node 2 cannot take the lock node 1 holds, and takes it once it is free."""
    n1, n2, _ = cluster.nodes
    with holding_fcntl_lock(n1):
        assert try_fcntl_lock(n2).startswith("busy")
    wait_until(
        lambda: try_fcntl_lock(n2) == "got" or None,
        what="node 2 to take the lock node 1 released",
        timeout=120,
    )


def _how(event: TimelineEvent) -> object:
    assert event.lab is not None
    return event.lab.data["how"]


def _check_chain(cluster: VmCluster, report: RecoveryReport) -> None:
    """The pcmk chain, in order: membership, fence, DLM recovery, journal replay; the lab's
    fence on the timeline; nothing acknowledged lost; the victim back."""
    t = report.times
    assert t.stack == "pcmk" and report.stack == "pcmk"
    chain = [t.membership, t.fence_done, t.recovery_begin, t.recovery_end, t.replay_end]
    assert None not in chain, report.summary()
    assert chain == sorted(chain), chain  # type: ignore[type-var]
    assert t.evicted is not None and t.in_order
    assert t.replayed_by in report.survivors
    fenced = cluster.timeline.events(LabEventKind.FENCED, node=VICTIM, since=report.fault_time)
    assert len(fenced) == 1, "the lab fenced the victim once, and recorded it"
    assert report.writes.acknowledged > 0 and report.writes.ok, report.writes.summary()
    assert report.writes_after_revive is not None and report.writes_after_revive.ok
    assert report.lost_writes == 0
    status = cluster.status()
    assert status.mounted == status.nodes and status.online == status.nodes


def test_kill_shows_membership_fence_recovery_and_replay(cluster: VmCluster) -> None:
    report = RecoveryExperiment(cluster, fault="kill", victim=3).run_once()
    print(report.summary())
    assert report.victim_fate == "killed"
    _check_chain(cluster, report)
    fence = cluster.timeline.events(LabEventKind.FENCED, node=VICTIM, since=report.fault_time)
    assert _how(fence[0]) == "already off"


def test_partition_minority_loses_quorum_and_is_fenced(cluster: VmCluster) -> None:
    """Node 3 cut off: it alone is no quorum; the two others are, form a membership without
    it, have the lab power it off, recover its locks and replay its journal."""
    report = RecoveryExperiment(cluster, fault="partition", victim=3).run_once()
    print(report.summary())
    assert report.victim_fate == "fenced"
    _check_chain(cluster, report)
    fence = cluster.timeline.events(LabEventKind.FENCED, node=VICTIM, since=report.fault_time)
    assert _how(fence[0]) == "powered off by the lab"
    # The minority side said it has no quorum before it was powered off; the majority did
    # not lose it.
    lost = cluster.timeline.events(EventKind.QUORUM_LOST, since=report.fault_time)
    assert {e.node for e in lost} == {VICTIM}, [e.kernel.raw for e in lost if e.kernel]
    assert lost[0].time < fence[0].time
