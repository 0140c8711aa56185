"""Clusters of one kernel per node: SSH machines
([`SshCluster`][ocfs2lab.kernel_cluster.SshCluster]) and VMs
([`VmCluster`][ocfs2lab.kernel_cluster.VmCluster]).

Containers on one host are one OCFS2 node to the kernel; a node that can die needs a kernel
of its own. ``with VmCluster(3) as c:`` boots three QEMU machines from the lab image, with
one shared disk and an interconnect switch of the lab's own, and runs the same o2cb and
volume code as the container topology ([`O2cbCluster`][ocfs2lab.fs.o2cb.O2cbCluster],
[`OcfsVolume`][ocfs2lab.fs.volume.OcfsVolume]) on them. Every node's kernel messages go to one
[`Timeline`][ocfs2lab.observe.timeline.Timeline], with the lab's own actions.

``with SshCluster(nodes, device) as c:`` does the same on machines that exist already
([`SshNode`][ocfs2lab.node.ssh.SshNode]).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from ocfs2lab.cluster import ClusterStatus
from ocfs2lab.coverage import Coverage, GcovTree, kernel_tree_of
from ocfs2lab.errors import HostError, LifecycleError, OwnershipError, SpecError
from ocfs2lab.experiment.faults import DiskStall, Fault, Freeze, Kill, Partition
from ocfs2lab.fs.heartbeat import HeartbeatRegion
from ocfs2lab.fs.o2cb import O2cbCluster
from ocfs2lab.fs.volume import FsckReport, OcfsVolume
from ocfs2lab.fs.workload import SharedIoWorkload, WorkloadReport
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.node.ssh import SshNode
from ocfs2lab.node.vm import VmNode
from ocfs2lab.observe.timeline import LabEventKind, Timeline
from ocfs2lab.parallel import run_parallel
from ocfs2lab.report import LogReporter, Reporter, phase
from ocfs2lab.spec import rules
from ocfs2lab.spec.cluster import ClusterSpec, NetworkSpec, TimingSpec
from ocfs2lab.spec.storage import HeartbeatSpec, VolumeSpec
from ocfs2lab.vm.image import build_image
from ocfs2lab.vm.qemu import DriveSpec, SshKey, proc_start_time, reap_stale_machines, run_root
from ocfs2lab.vm.recipe import ImageRecipe, LabImage
from ocfs2lab.vm.states import snapshots_wanted
from ocfs2lab.vm.switch import VdeSwitch, reap_stale_switches

log = logging.getLogger(__name__)

#: The interconnect of a VM cluster: a subnet on the lab's own switch (node k at .10+k).
VM_NETWORK = NetworkSpec(
    name="ocfs2-interconnect", subnet="192.168.77.0/24", first_host=10, reserve_gateway=False
)
#: Timing that suits emulated VMs: under TCG the shared disk is slow enough that heartbeat
#: writes hang for 2 s even when healthy, so a dead threshold of 7 (14 s) is the floor.
VM_TIMING = TimingSpec(
    dead_threshold=7, idle_timeout_ms=10000, keepalive_delay_ms=2000, reconnect_delay_ms=2000
)
#: What the gcov counters of a restored kernel hold (kept with its coverage reports).
RESTORED_COUNTERS = (
    "restored kernels count from their saved boot: modules loaded after the restore "
    "(ocfs2, o2dlm, fs/dlm) from their load; drbd, loaded at boot, includes its start-up, "
    "as a cold boot's counters include their own"
)
#: The shared disk's id (QMP) and serial (the guest's /dev/disk/by-id/virtio-<serial>).
SHARED_DISK_ID = "shared"
SHARED_DISK_SERIAL = "ocfs2lab-shared"

FaultName = Literal["kill", "freeze", "partition", "disk_stall"]


class SshCluster(Lifecycle):
    """An o2cb cluster and an OCFS2 volume on machines with one kernel each.

    Args:
        nodes: The nodes, node 1 first (its names, numbers and addresses make the cluster).
        device: The shared block device's path, the same on every node.
        name: The cluster name (o2cb: 1-16 letters and digits).
        network: The interconnect's subnet (every node's address must be in it).
        timing: Heartbeat and o2net knobs, set on every node before heartbeat starts.
        volume: Label, mount point, sizes.
        heartbeat_mode: ``"local"`` or ``"global"``.
        owned: The device may be wiped and formatted (you mean to lose what is on it).
        timeline: Where kernel messages and lab actions go (a new one by default).
        reporter: Receives the phases.

    Attributes:
        timeline: Every node's kernel messages and the lab's actions.
        o2cb: The o2cb cluster (after enter).
        volume: The mounted volume (after enter).

    Raises:
        SpecError: Bad input, before any node is touched.
    """

    def __init__(
        self,
        nodes: Sequence[SshNode],
        device: str,
        *,
        name: str = "ocfs2cluster",
        network: NetworkSpec | None = None,
        timing: TimingSpec | None = None,
        volume: VolumeSpec | None = None,
        heartbeat_mode: str = "local",
        owned: bool = False,
        timeline: Timeline | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        node_list = list(nodes)
        if not node_list:
            raise SpecError("nodes", [], "a cluster needs at least one node")
        spec = ClusterSpec(
            name=name,
            nodes=tuple(n.spec for n in node_list),
            network=network or _network_of(node_list),
            timing=timing or TimingSpec(),
        )
        self._setup(
            spec,
            node_list,
            device=device,
            volume=volume,
            heartbeat_mode=heartbeat_mode,
            owned=owned,
            timeline=timeline,
            reporter=reporter,
        )

    def _setup(
        self,
        spec: ClusterSpec,
        nodes: list[SshNode],
        *,
        device: str,
        volume: VolumeSpec | None,
        heartbeat_mode: str,
        owned: bool,
        timeline: Timeline | None,
        reporter: Reporter | None,
    ) -> None:
        if not device.startswith("/"):
            raise SpecError("device", device, "must be an absolute path (/dev/disk/by-id/...)")
        self.spec = spec
        self.nodes: list[SshNode] = nodes
        self.device = device
        self.volume_spec = volume or VolumeSpec()
        self.heartbeat_mode = HeartbeatSpec(mode=heartbeat_mode).mode  # type: ignore[arg-type]
        self.owned = owned
        self.timeline = timeline or Timeline()
        self.reporter: Reporter = reporter or LogReporter()
        self.o2cb: O2cbCluster | None = None
        self.volume: OcfsVolume | None = None
        self.heartbeat: HeartbeatRegion | None = None

    def describe(self) -> str:
        """Name for messages."""
        return f"cluster {self.spec.name}"

    # -- building -----------------------------------------------------------------------
    def _acquire(self) -> None:
        self._deploy()

    def _deploy(self) -> None:
        rep = self.reporter
        with self.step("check nodes"), phase(rep, "check nodes"):
            if not self.owned:
                raise OwnershipError(
                    f"refusing to wipe and format {self.device}: the lab did not create it",
                    hint="pass owned=True only for a device you mean to lose",
                )
            self.check_nodes()
        with self.step("timeline"):
            for node in self.nodes:
                source = node.feed_timeline(self.timeline)
                self.undo(source.close, f"stop the timeline feed of {node.spec.name}")
            self.timeline.meta["kernel"] = self.kernel_provenance()
        with self.step("o2cb"), phase(rep, "o2cb bootstrap and join"):
            self.o2cb = self.enter(
                O2cbCluster(self.nodes, self.spec, heartbeat_mode=self.heartbeat_mode)
            )
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
                )
            )
        with self.step("heartbeat started"):
            self.heartbeat.wait_active(self.volume.uuid())

    def check_nodes(self) -> None:
        """Check every node before anything is changed on any of them.

        Each must answer, be named as its spec (o2cb marks the local node by hostname), see
        the device, have its interconnect address, and run a kernel of its own.

        Raises:
            HostError: A node fails a check (all nodes are checked; every problem is named).
        """

        def check(node: SshNode) -> str:
            name = node.run(["uname", "-n"], timeout=30).stdout.strip().split(".")[0]
            if name != node.spec.name:
                raise HostError(
                    f"{node.spec.name}: the machine's hostname is {name!r}",
                    hint="o2cb takes the node whose name equals the hostname as the local "
                    "node: name the node after the machine",
                )
            if not node.is_block_device(self.device):
                raise HostError(f"{node.spec.name}: {self.device} is not a block device there")
            node.check_interconnect(self.spec.network)
            return node.boot_id()

        outcome = run_parallel(self.nodes, check)
        outcome.raise_failures("check nodes", lambda n: n.spec.name)
        kernels: dict[str, list[str]] = {}
        for node, boot_id in outcome.done:
            kernels.setdefault(boot_id, []).append(node.spec.name)
        shared = [names for names in kernels.values() if len(names) > 1]
        if shared:
            raise HostError(
                f"nodes share a kernel: {shared}",
                hint="one kernel is one OCFS2 node: give each node a machine of its own "
                "(containers of one host are one node: use Cluster for them)",
            )

    # -- using ---------------------------------------------------------------------------
    def node(self, which: str | int) -> SshNode:
        """A node by name or o2cb number (``-1``: the last node).

        Raises:
            SpecError: No such node.
        """
        if which == -1:
            return self.nodes[-1]
        spec = self.spec.node(which)
        return next(n for n in self.nodes if n.spec == spec)

    def kernel_provenance(self) -> dict[str, Any]:
        """What kernel the nodes run: here the ``uname -r`` of each node that is up (a lab
        VM cluster adds the recipe key, patches, tree commit and profile)."""
        releases = {
            n.spec.name: n.run(["uname", "-r"], timeout=30).stdout.strip()
            for n in self.nodes
            if n.up
        }
        distinct = sorted(set(releases.values()))
        return {"release": distinct[0] if len(distinct) == 1 else distinct, "nodes": releases}

    def _live(self) -> tuple[O2cbCluster, OcfsVolume]:
        if self.o2cb is None or self.volume is None:
            raise LifecycleError(f"{self.describe()} is not up", hint="use it inside `with`")
        return self.o2cb, self.volume

    def status(self) -> ClusterStatus:
        """Which nodes are up, online and mounted, and how many kernels they run."""
        o2cb, volume = self._live()
        up = [n for n in self.nodes if n.up]
        kernels = {n.boot_id() for n in up}
        online = tuple(n.spec.name for n in up if o2cb.online(n))
        mounted = tuple(n.spec.name for n in up if volume.is_mounted(n))
        down = [n.spec.name for n in self.nodes if n not in up]
        note = f"down: {', '.join(down)}" if down else ""
        return ClusterStatus(
            self.spec.name,
            tuple(n.spec.name for n in self.nodes),
            len(kernels),
            online,
            mounted,
            note,
        )

    def run_workload(
        self, workload: SharedIoWorkload | None = None, report_root: Path | None = None
    ) -> WorkloadReport:
        """The seed's I/O test on every node that is up, at once."""
        with phase(self.reporter, "workload"):
            up = [n for n in self.nodes if n.up]
            return (workload or SharedIoWorkload()).run(
                up, self.volume_spec.mount_point, report_root
            )

    def coverage(self, kernel: GcovTree | None = None, tools: Sequence[GcovTree] = ()) -> Coverage:
        """Coverage of the nodes' kernels (one each, merged) and of their tools.

        Args:
            kernel: The gcov tree of the kernel the machines run (your build of it).
            tools: Instrumented programs the nodes run (their data in ``GCOV_PREFIX``).
        """
        up = {n.spec.name: n for n in self.nodes if n.up}
        return Coverage(kernel, up if kernel else {}, tuple(tools), up if tools else {})

    def fsck(self) -> FsckReport:
        """Unmount on every node that is up, then ``fsck.ocfs2 -fn`` on the first of them."""
        _, volume = self._live()
        volume.unmount_all()
        first = next((n for n in self.nodes if n.up), None)
        if first is None:
            raise HostError("no node is up to run fsck on")
        return volume.fsck(first)

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
        up = [n for n in self.nodes if n.up]
        if not up:
            raise HostError("no node is up to repair the volume from")
        with self.timeline.phase("repair the volume"):
            volume.unmount_all()
            report = volume.fsck(up[0], repair=True)
            self.timeline.record(
                LabEventKind.NOTE,
                f"fsck.ocfs2 -fy exited {report.exit_code}",
                node=up[0].spec.name,
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

    def rejoin(self, node: SshNode) -> None:
        """Bring a node that was booted again back: join the cluster, mount the volume.

        Raises:
            SpecError: Not a node of this cluster.
            HostError: The node is not up.
        """
        o2cb, volume = self._live()
        if node not in self.nodes:
            raise SpecError("node", node.spec.name, "is not a node of this cluster")
        if not node.up:
            raise HostError(f"{node.spec.name} is down", hint="boot it first")
        with self.timeline.phase(f"rejoin {node.spec.name}", node=node.spec.name):
            o2cb.rejoin(node)
            volume.mount(node)

    # -- faults ---------------------------------------------------------------------------
    def fault(self, kind: FaultName, node: str | int | SshNode) -> Fault:
        """A fault on ``node`` as a restoring context manager (see the named methods).

        Raises:
            SpecError: An unknown fault, or a node that is not the cluster's.
        """
        target = node if isinstance(node, SshNode) else self.node(node)
        if target not in self.nodes:
            raise SpecError("node", target.spec.name, "is not a node of this cluster")
        if kind == "kill":
            return Kill(target, self.timeline)
        if kind == "freeze":
            return Freeze(target, self.timeline)
        if kind == "partition":
            return Partition(target, self.timeline)
        if kind == "disk_stall":
            return DiskStall(target, self.timeline)
        raise SpecError("fault", kind, "must be kill, freeze, partition or disk_stall")

    # Each fault of `FaultName` has a method of its name: `with cluster.disk_stall(3):` is
    # `RecoveryExperiment(cluster, fault="disk_stall", victim=3)`'s fault.
    def kill(self, node: str | int | SshNode) -> Fault:
        """Hard power-off of a node (stays down:
        [`VmCluster.revive`][ocfs2lab.kernel_cluster.VmCluster.revive] boots it again)."""
        return self.fault("kill", node)

    def freeze(self, node: str | int | SshNode) -> Fault:
        """Freeze a node's CPUs; thawed when the block ends."""
        return self.fault("freeze", node)

    def partition(self, node: str | int | SshNode) -> Fault:
        """Cut a node's interconnect link; healed when the block ends."""
        return self.fault("partition", node)

    def disk_stall(self, node: str | int | SshNode) -> Fault:
        """Stall a node's I/O to the shared disk; released when the block ends."""
        return self.fault("disk_stall", node)

    def stall_disk(self, node: str | int | SshNode) -> Fault:
        """The same as [`disk_stall`][ocfs2lab.kernel_cluster.SshCluster.disk_stall] (its
        earlier name)."""
        return self.disk_stall(node)


def _network_of(nodes: Sequence[SshNode]) -> NetworkSpec:
    """The smallest /24 holding node 1's address (a default for SSH machines)."""
    first = nodes[0].spec.address
    subnet = f"{first.exploded.rsplit('.', 1)[0]}.0/24"
    return NetworkSpec(name="ocfs2-interconnect", subnet=subnet, reserve_gateway=False)


class VmCluster(SshCluster):
    """A cluster of QEMU machines, one kernel per node, sharing one disk (a context manager).

    ``with VmCluster(3) as c:`` builds (or reuses) the lab image, makes a sparse shared disk
    and a VDE switch of the lab's own, boots the nodes concurrently, then deploys o2cb and
    the volume on them. Leaving the block unmounts, unregisters, powers every machine off,
    stops the switch and removes the disk, overlays, sockets and keys.

    Args:
        nodes: Number of nodes, or a [`ClusterSpec`][ocfs2lab.spec.cluster.ClusterSpec] (its
            addresses must be in ``network``).
        name: Cluster name (when ``nodes`` is a number).
        timing: Heartbeat and o2net knobs (default `VM_TIMING`).
        disk_size: Size of the shared disk (sparse).
        memory_mib: Memory per VM.
        cpus: CPUs per VM.
        volume: Label, mount point, sizes.
        heartbeat_mode: ``"local"`` or ``"global"``.
        recipe: The image recipe (Debian trixie by default).
        image: An image already built (skips the build).
        cache_dir: Image cache.
        log_dir: Keep each node's console and QEMU logs here.
        deploy: Deploy o2cb and the volume after the boot; ``False`` stops at booted
            machines (each reachable over SSH: `VmNode.target`, the shared disk at
            `device`), e.g. to drive them as [`SshNode`][ocfs2lab.node.ssh.SshNode].
        reporter: Receives the phases.
        snapshots: Start nodes (and revive them) from saved states, saved at the first
            start of each node identity; ``False`` boots cold always. Default: on, unless
            ``$OCFS2LAB_SNAPSHOTS`` is ``0`` ([`ocfs2lab.vm.states`][ocfs2lab.vm.states]).

    Raises:
        SpecError: Bad input, before anything is made.
    """

    #: The timing a VM cluster gets unless told otherwise (`VM_TIMING`).
    default_timing: TimingSpec = VM_TIMING

    def __init__(
        self,
        nodes: int | ClusterSpec = 3,
        *,
        name: str = "vmcluster",
        timing: TimingSpec | None = None,
        disk_size: int | str = "2G",
        memory_mib: int = 1024,
        cpus: int = 1,
        volume: VolumeSpec | None = None,
        heartbeat_mode: str = "local",
        recipe: ImageRecipe | None = None,
        image: LabImage | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        deploy: bool = True,
        reporter: Reporter | None = None,
        snapshots: bool | None = None,
    ) -> None:
        self.deploy = deploy
        self.snapshots = snapshots_wanted(snapshots)
        spec = (
            nodes
            if isinstance(nodes, ClusterSpec)
            else ClusterSpec.of_size(
                nodes, name=name, network=VM_NETWORK, timing=timing or self.default_timing
            )
        )
        self.cluster_spec = spec
        self.disk_size = rules.parse_size(disk_size)
        if self.disk_size < 256 << 20:
            raise SpecError("disk_size", disk_size, "must be at least 256M (journals and slots)")
        if not 256 <= memory_mib <= 64 * 1024:
            raise SpecError("memory_mib", memory_mib, "must be between 256 and 65536")
        if not 1 <= cpus <= 64:
            raise SpecError("cpus", cpus, "must be between 1 and 64")
        self.memory_mib = memory_mib
        self.cpus = cpus
        self.recipe = recipe or ImageRecipe()
        self.image = image
        self.cache_dir = cache_dir
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.work_dir: Path | None = None
        self.switch: VdeSwitch | None = None
        self.vms: list[VmNode] = []
        self._setup(
            spec,
            [],
            device=f"/dev/disk/by-id/virtio-{SHARED_DISK_SERIAL}",
            volume=volume,
            heartbeat_mode=heartbeat_mode,
            owned=True,  # the lab makes the disk: it may wipe and format it
            timeline=None,
            reporter=reporter,
        )

    def describe(self) -> str:
        """Name for messages."""
        return f"VM cluster {self.spec.name}"

    def kernel_provenance(self) -> dict[str, Any]:
        """The lab kernel the machines boot: release, recipe key, patches (names and
        SHA-256), the tree's commit and dirty flag, the profile; Debian's kernel gives its
        release only."""
        if self.image is not None and self.image.kernel_provenance:
            return dict(self.image.kernel_provenance)
        return super().kernel_provenance()

    # -- building -----------------------------------------------------------------------
    def _acquire(self) -> None:
        rep = self.reporter
        if self.image is None:
            with self.step("image"), phase(rep, "image"):
                self.image = build_image(self.recipe, cache_dir=self.cache_dir, reporter=rep)
        image = self.image
        with self.step("reap stale machines"):
            # What crashed owners left (machines, switches, cluster files), never a live one's.
            reap_stale_machines()
            reap_stale_switches()
        with self.step("work directory"):
            self._make_work_dir()
        assert self.work_dir is not None
        with self.step("shared disk"):
            disk = self.work_dir / "shared.raw"
            with disk.open("wb") as f:
                f.truncate(self.disk_size)
            shared = DriveSpec(
                SHARED_DISK_ID, disk, SHARED_DISK_SERIAL, cache=_cache_mode(disk), shared=True
            )
        with self.step("ssh key"):
            key = SshKey.generate(self.work_dir)
        with self.step("switch"):
            self.switch = self.enter(VdeSwitch(ports=max(8, 2 * len(self.spec.nodes))))
        self.vms = [
            VmNode(
                n,
                image,
                network=self.spec.network,
                shared=shared,
                switch=self.switch.socket,
                memory_mib=self.memory_mib,
                cpus=self.cpus,
                ssh_key=key,
                timeline=self.timeline,
                log_dir=self.log_dir,
                reporter=rep,
                snapshots=self.snapshots,
            )
            for n in self.spec.nodes
        ]
        with self.step("boot nodes"), phase(rep, f"boot {len(self.vms)} VMs"):
            with self.timeline.phase("boot"):
                outcome = run_parallel(self.vms, lambda vm: vm.__enter__())
            for vm, _ in outcome.done:
                self.undo(vm.close, f"power off {vm.spec.name}")
            outcome.raise_failures("boot", lambda vm: vm.spec.name)
        self.nodes = list(self.vms)
        if self.deploy:
            self._deploy()

    def _make_work_dir(self) -> None:
        root = run_root()
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"cluster-{self.spec.name}-", dir=root))
        self.work_dir = work
        self.undo(lambda: shutil.rmtree(work, ignore_errors=True), "remove the cluster's files")
        # The same state file as a machine's: reap_stale_machines removes the directory
        # (shared disk, key) once this process is gone.
        (work / "state.json").write_text(
            json.dumps(
                {
                    "hostname": self.spec.name,
                    "owner_pid": os.getpid(),
                    "owner_start": proc_start_time(os.getpid()),
                    "work_dir": str(work),
                }
            )
        )

    # -- using ---------------------------------------------------------------------------
    def coverage(
        self, kernel: GcovTree | None = None, tools: Sequence[GcovTree] | None = None
    ) -> Coverage:
        """Coverage of the VMs' kernels (one each, merged) and of their tools.

        Args:
            kernel: Default: the lab kernel of the image (``None`` for Debian's kernel).
            tools: Default: the image's coverage probe (``o2probe``).
        """
        if self.image is None:
            raise LifecycleError(f"{self.describe()}: not built yet")
        kernel = kernel or kernel_tree_of(self.image)
        if kernel is not None and any(vm.restored for vm in self.vms):
            starts = {
                vm.spec.name: vm.machine.start_note or "booted"
                for vm in self.vms
                if vm.machine is not None
            }
            kernel = attrs.evolve(
                kernel,
                provenance={**kernel.provenance, "starts": starts, "counters": RESTORED_COUNTERS},
            )
        tools = [GcovTree.of_image(self.image)] if tools is None else tools
        return SshCluster.coverage(self, kernel, tools)

    def vm(self, which: str | int | SshNode) -> VmNode:
        """A VM node by name, number or node.

        Raises:
            SpecError: No such node.
        """
        node = which if isinstance(which, SshNode) else self.node(which)
        for vm in self.vms:
            if vm is node:
                return vm
        raise SpecError("node", node.spec.name, "is not a VM of this cluster")

    def revive(self, which: str | int | SshNode) -> VmNode:
        """Boot a killed or fenced node again, rejoin it and mount the volume on it.

        Returns:
            The node.

        Raises:
            LifecycleError: The node still runs, or its boot failed.
        """
        vm = self.vm(which)
        name = vm.spec.name
        with self.timeline.phase(f"revive {name}", node=name):
            self.timeline.record(LabEventKind.NOTE, f"boot {name} again", node=name)
            vm.revive()
            self.rejoin(vm)
        self.timeline.record(
            LabEventKind.FAULT_HEALED, f"revived {name}", node=name, data={"fault": "revive"}
        )
        return vm

    @contextlib.contextmanager
    def down(self, which: str | int | SshNode) -> Iterator[VmNode]:
        """Kill a node for the block and revive it afterwards (one repetition's fault)."""
        vm = self.vm(which)
        with self.kill(vm):
            yield vm
        self.revive(vm)


def _cache_mode(path: Path) -> Literal["none", "writethrough"]:
    """``none`` (O_DIRECT) where the file system supports it, else ``writethrough``.

    Every machine's QEMU writes to the same host file; the host's page cache is one, so
    both modes keep the machines' views coherent. O_DIRECT also keeps it out of the host's
    memory, but tmpfs refuses it.
    """
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return "writethrough"
    try:
        fd = os.open(path, os.O_RDONLY | flag)
    except OSError:
        return "writethrough"
    os.close(fd)
    return "none"
