"""The one cluster pipeline, and what every running cluster offers.

A cluster is a provisioner and a pipeline. The provisioner (a subclass's
`_provision`) brings the nodes and the shared
device: privileged containers on a host with a DRBD device, machines reached over SSH, or
QEMU machines with a shared disk. The pipeline is written once, here: the timeline feeds,
the cluster stack (o2cb: bootstrap on node 1, join on the others, and the heartbeat region;
or pcmk: corosync and dlm_controld), and the volume (mkfs.ocfs2, mount on every node), each
registered for undo the moment it exists.

Status, the workload, coverage, fsck and repair, rejoin and revive, node lookup and the
faults are written once too, for every topology. A fault asks the node for the capability
it needs ([`ocfs2lab.node.base`][ocfs2lab.node.base]); a node without it is refused before
anything is touched.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from attrs import frozen

from ocfs2lab.coverage import Coverage, GcovTree
from ocfs2lab.errors import HostError, LifecycleError, SpecError
from ocfs2lab.experiment.faults import (
    FAULTS,
    ClockStep,
    DegradedLink,
    Fault,
    FaultName,
    Split,
    Together,
    Trigger,
)
from ocfs2lab.fs.heartbeat import HeartbeatRegion
from ocfs2lab.fs.o2cb import O2cbCluster
from ocfs2lab.fs.pcmk import PcmkCluster
from ocfs2lab.fs.stack import ClusterStack
from ocfs2lab.fs.volume import FsckReport, OcfsVolume
from ocfs2lab.fs.workload import SharedIoWorkload, WorkloadReport
from ocfs2lab.host.base import Shell
from ocfs2lab.host.changes import MachineChanges
from ocfs2lab.host.state import Ledger, check_lab_id, new_lab_id
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.node.base import Node, Power, capable
from ocfs2lab.observe.events import TimelineEvent
from ocfs2lab.observe.timeline import LabEventKind, Timeline
from ocfs2lab.report import LogReporter, Reporter, phase
from ocfs2lab.spec.cluster import ClusterSpec
from ocfs2lab.spec.link import LinkSpec
from ocfs2lab.spec.stack import PcmkSpec, StackName, check_stack
from ocfs2lab.spec.storage import HeartbeatSpec, VolumeSpec

log = logging.getLogger(__name__)


@frozen
class ClusterStatus:
    """What the cluster really is.

    Attributes:
        name: Cluster name.
        nodes: Node names.
        kernel_nodes: Distinct kernels among the nodes that are up (boot ids): the real
            OCFS2 nodes.
        online: Nodes that take part in the cluster (o2cb: ``o2cb cluster-status`` says
            online; pcmk: in a quorate corosync membership, dlm_controld answering).
        mounted: Nodes with the volume mounted.
        note: Why ``kernel_nodes`` may be smaller than ``len(nodes)`` (nodes that are down,
            or nodes that share a kernel).
    """

    name: str
    nodes: tuple[str, ...]
    kernel_nodes: int
    online: tuple[str, ...]
    mounted: tuple[str, ...]
    note: str


class LabCluster(Lifecycle):
    """Base of the clusters: nodes and a shared device from a provisioner, then the pipeline.

    Subclasses implement `_provision` (set
    ``nodes`` and ``device``, registering the undo of what they make) and may override the
    hooks below it. ``with`` runs the provisioner, then the pipeline unless ``deploy`` is
    off; leaving the block undoes both in reverse.

    Args:
        spec: Name, nodes, interconnect and timing.
        volume: Label, mount point, sizes.
        heartbeat_mode: ``"local"`` or ``"global"``.
        owned: The device may be wiped and formatted.
        deploy: Run the pipeline after the provisioner.
        timeline: Where kernel messages and lab actions go (a new one by default).
        reporter: Receives the phases.
        lab_id: The lab's id (a fresh one by default): it names the ledger on each machine.
        stack: ``"o2cb"`` (the seed's: o2hb, o2net, o2dlm) or ``"pcmk"`` (corosync,
            dlm_controld and the kernel's fs/dlm; one kernel per node, so not on containers).
        pcmk: The pcmk stack's knobs (corosync's timers, fencing); only with ``"pcmk"``.

    Attributes:
        nodes: The cluster's nodes, node 1 first (after the provisioner).
        device: The shared block device's path on the nodes.
        timeline: Every kernel's messages and the lab's actions.
        o2cb: The o2cb cluster (after the pipeline, with stack ``"o2cb"``).
        pcmk: The pcmk cluster (after the pipeline, with stack ``"pcmk"``).
        heartbeat: The heartbeat region (after the pipeline, with stack ``"o2cb"``).
        volume: The mounted volume (after the pipeline).

    Raises:
        SpecError: Bad input, before anything is touched.
    """

    def __init__(
        self,
        spec: ClusterSpec,
        *,
        volume: VolumeSpec | None = None,
        heartbeat_mode: str = "local",
        owned: bool = False,
        deploy: bool = True,
        timeline: Timeline | None = None,
        reporter: Reporter | None = None,
        lab_id: str | None = None,
        stack: StackName = "o2cb",
        pcmk: PcmkSpec | None = None,
    ) -> None:
        self.spec = spec
        self.lab_id = check_lab_id(lab_id or new_lab_id())
        self.volume_spec = volume or VolumeSpec()
        self.heartbeat_mode = HeartbeatSpec(mode=heartbeat_mode).mode  # type: ignore[arg-type]
        self.stack: StackName = check_stack(stack)
        self._check_stack(pcmk)
        self.pcmk_spec = pcmk or PcmkSpec()
        self.owned = owned
        self.deploy = deploy
        self.timeline = timeline if timeline is not None else Timeline()
        self.reporter: Reporter = reporter or LogReporter()
        self.nodes: list[Any] = []
        self.device = ""
        self.o2cb: O2cbCluster | None = None
        self.pcmk: PcmkCluster | None = None
        self.heartbeat: HeartbeatRegion | None = None
        self.volume: OcfsVolume | None = None
        self._changes: dict[str, MachineChanges] = {}

    #: Whether the topology gives each node a kernel of its own (the pcmk stack needs it:
    #: a kernel is one DLM node).
    kernel_per_node = True

    #: Whether the pipeline records its changes in a ledger on each node (machines of one
    #: kernel each: SSH and VM nodes; container nodes go with their containers).
    records_changes = True
    #: Whether leaving the block gives each node back what the pipeline changed there (off
    #: where the machine is discarded right after: a VM node's overlay).
    restores_nodes = True

    def describe(self) -> str:
        """Name for messages."""
        return f"cluster {self.spec.name}"

    def _check_stack(self, pcmk: PcmkSpec | None) -> None:
        if pcmk is not None and self.stack != "pcmk":
            raise SpecError("pcmk", pcmk, "is the pcmk stack's settings: pass stack='pcmk'")
        if self.stack != "pcmk":
            return
        if not self.kernel_per_node:
            raise SpecError(
                "stack",
                self.stack,
                "needs a kernel per node (one kernel is one DLM node and holds one stack); "
                f"a {type(self).__name__}'s nodes share the host's kernel: use VmCluster or "
                "SshCluster",
            )
        if self.heartbeat_mode != "local":
            raise SpecError(
                "heartbeat_mode",
                self.heartbeat_mode,
                "is o2cb's disk heartbeat; the pcmk stack has none (leave it 'local')",
            )

    # -- what a topology provides ------------------------------------------------------------
    def _provision(self) -> None:
        """Bring the nodes and the shared device (set ``nodes`` and ``device``)."""
        raise NotImplementedError

    def _check_nodes(self, stack: ClusterStack) -> None:
        """Check the nodes before the pipeline changes anything on them (default: none).

        Args:
            stack: The stack about to be set up (what it would write, e.g. its
                ``cluster.conf``).
        """

    def _feed_timeline(self) -> None:
        """Feed every kernel's messages to the timeline (default: each node's own feed)."""
        for node in self.nodes:
            source = node.feed_timeline(self.timeline)
            self.undo(source.close, f"stop the timeline feed of {node.spec.name}")

    def _stack_starting(self) -> None:
        """Called right before the stack is set up (a topology may record it first)."""

    def _kernel_machines(self) -> Mapping[str, Shell]:
        """Where kernel coverage is collected, by name (default: the nodes that are up)."""
        return self._up_nodes()

    def _kernel_tree(self, given: GcovTree | None) -> GcovTree | None:
        """The gcov tree of the kernel the nodes run: ``given``, else the lab kernel's when
        the lab built it (default: ``given``)."""
        return given

    def _default_tools(self) -> Sequence[GcovTree]:
        """Instrumented programs the nodes run, when the lab built them."""
        return ()

    def changes(self, node: Node) -> MachineChanges:
        """The lab's changes on ``node`` (recorded in its ledger when the topology does)."""
        name = node.spec.name
        if name not in self._changes:
            ledger = Ledger(cast(Shell, node), self.lab_id) if self.records_changes else None
            self._changes[name] = MachineChanges(cast(Shell, node), ledger)
        return self._changes[name]

    # -- the pipeline -------------------------------------------------------------------------
    def _acquire(self) -> None:
        self._provision()
        if self.deploy:
            self._deploy()

    def _make_stack(self) -> ClusterStack:
        if self.stack == "pcmk":
            return PcmkCluster(
                self.nodes,
                self.spec,
                self.pcmk_spec,
                timeline=self.timeline,
                changes=self.changes,
                restore=self.restores_nodes,
                comment=f"written by ocfs2lab (lab {self.lab_id})",
            )
        return O2cbCluster(
            self.nodes,
            self.spec,
            heartbeat_mode=self.heartbeat_mode,
            changes=self.changes,
            restore=self.restores_nodes,
        )

    def _deploy(self) -> None:
        rep = self.reporter
        stack = self._make_stack()
        with self.step("check nodes"), phase(rep, "check nodes"):
            self._check_nodes(stack)
        with self.step("timeline"):
            self._feed_timeline()
            self.timeline.meta["kernel"] = self.kernel_provenance()
            self.timeline.meta["stack"] = self.stack
        if isinstance(stack, PcmkCluster):
            with self.step("pcmk"), phase(rep, "corosync and dlm_controld"):
                self._stack_starting()
                self.pcmk = self.enter(stack)
        else:
            assert isinstance(stack, O2cbCluster)
            with self.step("o2cb"), phase(rep, "o2cb bootstrap and join"):
                self._stack_starting()
                self.o2cb = self.enter(stack)
            self.heartbeat = HeartbeatRegion(
                self.o2cb, HeartbeatSpec(mode=self.heartbeat_mode, device=self.device)
            )
        with self.step("volume"), phase(rep, "mkfs and mount"):
            self.volume = self.enter(
                OcfsVolume(
                    self.nodes,
                    self.device,
                    self.volume_spec,
                    self.spec.name,
                    owned=self.owned,
                    heartbeat=self.heartbeat,
                    changes=self.changes,
                    stack=self.stack,
                )
            )
        if self.heartbeat is not None:
            with self.step("heartbeat started"):
                # Local mode: mounting started heartbeat on the volume itself.
                self.heartbeat.wait_active(self.volume.uuid())

    # -- lookup ------------------------------------------------------------------------------
    def node(self, which: str | int | Node) -> Any:
        """A node by name, o2cb number (``-1``: the last node) or the node itself.

        Raises:
            SpecError: No such node in this cluster.
        """
        if not isinstance(which, str | int):
            if which not in self.nodes:
                raise SpecError("node", which.spec.name, "is not a node of this cluster")
            return which
        if which == -1:
            if not self.nodes:
                raise LifecycleError(f"{self.describe()} has no nodes yet")
            return self.nodes[-1]
        spec = self.spec.node(which)
        for n in self.nodes:
            if n.spec == spec:
                return n
        raise LifecycleError(f"{self.describe()}: {spec.name} is not made yet")

    def _up_nodes(self) -> dict[str, Any]:
        return {n.spec.name: n for n in self.nodes if n.up}

    def _live(self) -> tuple[ClusterStack, OcfsVolume]:
        stack = self.o2cb if self.o2cb is not None else self.pcmk
        if stack is None or self.volume is None:
            raise LifecycleError(f"{self.describe()} is not up", hint="use it inside `with`")
        return stack, self.volume

    def kernel_provenance(self) -> dict[str, Any]:
        """What kernel the nodes run: the ``uname -r`` of each node that is up (a lab VM
        cluster gives the recipe key, patches, tree commit and profile)."""
        releases = {
            name: n.run(["uname", "-r"], timeout=30).stdout.strip()
            for name, n in self._up_nodes().items()
        }
        distinct = sorted(set(releases.values()))
        return {"release": distinct[0] if len(distinct) == 1 else distinct, "nodes": releases}

    # -- using ---------------------------------------------------------------------------
    def status(self) -> ClusterStatus:
        """Which nodes are up, online and mounted, and how many kernels they run."""
        stack, volume = self._live()
        up = list(self._up_nodes().values())
        kernels = {n.boot_id() for n in up}
        notes = []
        down = [n.spec.name for n in self.nodes if n not in up]
        if down:
            notes.append(f"down: {', '.join(down)}")
        if len(kernels) < len(up):
            notes.append(self._shared_kernel_note())
        return ClusterStatus(
            self.spec.name,
            tuple(n.spec.name for n in self.nodes),
            len(kernels),
            tuple(n.spec.name for n in up if stack.online(n)),
            tuple(n.spec.name for n in up if volume.is_mounted(n)),
            "; ".join(notes),
        )

    def _shared_kernel_note(self) -> str:
        return "nodes share a kernel: one kernel is one OCFS2 node"

    def run_workload(
        self, workload: SharedIoWorkload | None = None, report_root: Path | None = None
    ) -> WorkloadReport:
        """The seed's I/O test on every node that is up, at once (see
        [`SharedIoWorkload`][ocfs2lab.fs.workload.SharedIoWorkload])."""
        with phase(self.reporter, "workload"):
            up = list(self._up_nodes().values())
            return (workload or SharedIoWorkload()).run(
                up, self.volume_spec.mount_point, report_root
            )

    def coverage(
        self, kernel: GcovTree | None = None, tools: Sequence[GcovTree] | None = None
    ) -> Coverage:
        """Coverage of the cluster's kernels (merged) and of the tools its nodes run.

        Args:
            kernel: The gcov tree of the kernel the nodes run. Default: the lab kernel,
                when the lab built it (none for any other kernel).
            tools: Instrumented programs the nodes run (their data in ``GCOV_PREFIX``).
                Default: the lab image's coverage probe (``o2probe``) when the lab built
                the image.
        """
        kernel = self._kernel_tree(kernel)
        tools = tuple(self._default_tools() if tools is None else tools)
        up = self._up_nodes()
        return Coverage(
            kernel, self._kernel_machines() if kernel else {}, tools, up if tools else {}
        )

    def fsck(self) -> FsckReport:
        """Unmount on every node that is up (it stays unmounted), then ``fsck.ocfs2 -fn`` on
        the first of them."""
        _, volume = self._live()
        volume.unmount_all()
        return volume.fsck(self._first_up())

    def _first_up(self) -> Any:
        first = next(iter(self._up_nodes().values()), None)
        if first is None:
            raise HostError(f"{self.describe()}: no node is up")
        return first

    def repair(self) -> FsckReport:
        """Unmount everywhere, ``fsck.ocfs2 -fy`` on the first node that is up, mount again.

        For a volume a node cannot mount any more (``please run fsck.ocfs2``), e.g. after a
        node that was evicted while frozen wrote on. Recorded on the timeline.

        Returns:
            What fsck said (exit 1: errors were found and corrected).

        Raises:
            HostError: No node is up, or fsck left errors uncorrected (exit 4 or more).
            CommandFailed: A node could not mount afterwards.
        """
        _, volume = self._live()
        up = list(self._up_nodes().values())
        first = self._first_up()
        with self.timeline.phase("repair the volume"):
            volume.unmount_all()
            report = volume.fsck(first, repair=True)
            self.timeline.record(
                LabEventKind.NOTE,
                f"fsck.ocfs2 -fy exited {report.exit_code}",
                node=first.spec.name,
                data={"output": report.output[-4000:]},
            )
            if report.exit_code >= 4:
                raise HostError(
                    f"fsck.ocfs2 -fy left errors (exit {report.exit_code}): {report.output[-800:]}",
                    hint="the volume is damaged beyond what fsck corrects: recreate the cluster",
                )
            for node in up:
                volume.mount(node)
        return report

    def rejoin(self, which: str | int | Node) -> None:
        """Bring a node that was booted again back: join the cluster, mount the volume.

        Raises:
            SpecError: Not a node of this cluster.
            HostError: The node is not up.
        """
        stack, volume = self._live()
        node = self.node(which)
        if not node.up:
            raise HostError(f"{node.spec.name} is down", hint="boot it first")
        # Booted again: its ledger is read afresh from the machine (what survived the boot).
        self._changes.pop(node.spec.name, None)
        with self.timeline.phase(f"rejoin {node.spec.name}", node=node.spec.name):
            stack.rejoin(node)
            volume.mount(node)

    def revive(self, which: str | int | Node) -> Any:
        """Boot a killed or fenced node again, rejoin it and mount the volume on it.

        Returns:
            The node.

        Raises:
            SpecError: The node has no power control (only VM nodes can be revived).
            LifecycleError: The node still runs, or its boot failed.
        """
        node = self.node(which)
        name = node.spec.name
        if not capable(node, Power):
            raise SpecError(
                "node",
                name,
                f"cannot be revived: a {node.kind} node has no power control (Power: kill, "
                "revive); boot it yourself, then call rejoin()",
            )
        with self.timeline.phase(f"revive {name}", node=name):
            self.timeline.record(LabEventKind.NOTE, f"boot {name} again", node=name)
            node.revive()
            self.rejoin(node)
        self.timeline.record(
            LabEventKind.FAULT_HEALED, f"revived {name}", node=name, data={"fault": "revive"}
        )
        return node

    def acknowledge_fence(self, which: str | int | Node) -> None:
        """Tell the pcmk stack that a node whose fence it asked for is down (with fencing
        ``"manual"``, or a node the lab cannot power off): the DLM then recovers.

        Raises:
            SpecError: Not a pcmk cluster, or no fence request for that node is waiting.
        """
        if self.pcmk is None:
            raise SpecError("stack", self.stack, "only the pcmk stack asks for fences")
        self.pcmk.acknowledge_fence(self.node(which))

    @contextlib.contextmanager
    def down(self, which: str | int | Node) -> Iterator[Any]:
        """Kill a node for the block and revive it afterwards (one repetition's fault)."""
        node = self.node(which)
        with self.kill(node):
            yield node
        self.revive(node)

    # -- faults ---------------------------------------------------------------------------
    def fault(self, kind: FaultName, node: str | int | Node) -> Fault:
        """A fault on ``node`` as a restoring context manager (see the named methods).

        Raises:
            SpecError: An unknown fault, a node that is not the cluster's, or a node
                without the capability the fault needs (nothing is touched).
        """
        if kind not in FAULTS:
            raise SpecError("fault", kind, f"must be one of {', '.join(FAULTS)}")
        return FAULTS[kind](self.node(node), self.timeline)

    # Each fault of `FaultName` has a method of its name: `with cluster.disk_stall(3):` is
    # `RecoveryExperiment(cluster, fault="disk_stall", victim=3)`'s fault.
    def kill(self, node: str | int | Node) -> Fault:
        """Hard power-off of a node (it stays down until
        [`revive`][ocfs2lab.clusters.base.LabCluster.revive] boots it again)."""
        return self.fault("kill", node)

    def freeze(self, node: str | int | Node) -> Fault:
        """Freeze a node's CPUs; thawed when the block ends."""
        return self.fault("freeze", node)

    def partition(self, node: str | int | Node) -> Fault:
        """Cut a node's interconnect link; healed when the block ends."""
        return self.fault("partition", node)

    def disk_stall(self, node: str | int | Node) -> Fault:
        """Stall a node's I/O to the shared disk; released when the block ends."""
        return self.fault("disk_stall", node)

    def stall_disk(self, node: str | int | Node) -> Fault:
        """The same as [`disk_stall`][ocfs2lab.clusters.base.LabCluster.disk_stall] (its
        earlier name)."""
        return self.disk_stall(node)

    def degrade_link(
        self,
        node: str | int | Node,
        *,
        loss_pct: float = 0.0,
        delay_ms: float = 0.0,
        jitter_ms: float = 0.0,
        duplicate_pct: float = 0.0,
    ) -> DegradedLink:
        """Degrade a node's interconnect link (loss, delay and jitter, duplication), outside
        its guest; restored on exit. The values are checked as a
        [`LinkSpec`][ocfs2lab.spec.link.LinkSpec] before anything is touched."""
        link = LinkSpec(loss_pct, delay_ms, jitter_ms, duplicate_pct)
        return DegradedLink(self.node(node), self.timeline, link=link)

    def clock_step(self, node: str | int | Node, seconds: float = 60.0) -> ClockStep:
        """Step a node's wall clock by ``seconds`` (negative: back); stepped back on exit."""
        return ClockStep(self.node(node), self.timeline, seconds)

    def split(
        self,
        groups: Sequence[Sequence[str | int | Node]] | None = None,
        *,
        between: tuple[str | int | Node, str | int | Node] | None = None,
        one_way: tuple[str | int | Node, str | int | Node] | None = None,
    ) -> Split:
        """A partition of any shape, healed on exit. Exactly one of:

        * ``groups``: nodes hear only their own group (``[[1, 2], [3]]``);
        * ``between=(a, b)``: only the link between ``a`` and ``b`` is cut, both ways;
        * ``one_way=(a, b)``: ``b`` stops hearing ``a``; ``a`` still hears ``b``.

        Raises:
            SpecError: Not exactly one shape, an unknown node, or a node without packet
                filtering (VM nodes have it).
        """
        given = [x for x in (groups, between, one_way) if x is not None]
        if len(given) != 1:
            raise SpecError("split", len(given), "give exactly one of groups, between, one_way")
        if groups is not None:
            return Split.groups([[self.node(n) for n in g] for g in groups], self.timeline)
        if between is not None:
            return Split.between(self.node(between[0]), self.node(between[1]), self.timeline)
        assert one_way is not None
        return Split.one_way(self.node(one_way[0]), self.node(one_way[1]), self.timeline)

    def together(self, *faults: Fault | Split) -> Together:
        """Several faults at once (several victims): ``cluster.together(cluster.kill(2),
        cluster.kill(3))``."""
        return Together(faults)

    def when(self, step: Any, make: Callable[[TimelineEvent], Fault | Split | Together]) -> Trigger:
        """A fault fired by a timeline event: ``cluster.when(EventKind.RECOVERY_MASTER,
        lambda e: cluster.kill(e.node))`` kills the recovery master the moment it says so."""
        return Trigger(self.timeline, step, make)
