"""VmCluster: QEMU machines, one kernel per node, sharing one disk, and the one pipeline.

Containers on one host are one OCFS2 node to the kernel; a node that can die needs a kernel
of its own. ``with VmCluster(3) as c:`` has its provisioner,
[`VmMachines`][ocfs2lab.clusters.vms.VmMachines], build (or reuse) the lab image, make a
sparse shared disk and a switch of the lab's own and start the machines; then the pipeline of
[`LabCluster`][ocfs2lab.clusters.base.LabCluster] deploys o2cb and the volume on them. Every
node's kernel messages go to one [`Timeline`][ocfs2lab.observe.timeline.Timeline], with the
lab's own actions. VM nodes have every capability: power, freeze, link and disk.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from ocfs2lab.clusters.base import LabCluster
from ocfs2lab.clusters.machines import check_machines
from ocfs2lab.coverage import GcovTree, kernel_tree_of
from ocfs2lab.errors import LifecycleError, SpecError
from ocfs2lab.fs.stack import ClusterStack
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.node.base import Node
from ocfs2lab.node.vm import VmNode
from ocfs2lab.observe.timeline import Timeline
from ocfs2lab.parallel import run_parallel
from ocfs2lab.report import LogReporter, Reporter, phase
from ocfs2lab.spec import rules
from ocfs2lab.spec.cluster import ClusterSpec, NetworkSpec, TimingSpec
from ocfs2lab.spec.stack import PcmkSpec, StackName
from ocfs2lab.spec.storage import VolumeSpec
from ocfs2lab.vm.image import build_image
from ocfs2lab.vm.ownership import claim_dir, reap_stale
from ocfs2lab.vm.recipe import ImageRecipe, LabImage
from ocfs2lab.vm.spec import DriveSpec, SshKey
from ocfs2lab.vm.states import snapshots_wanted
from ocfs2lab.vm.switch import LinkFilter, VdeSwitch

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
#: Where the guests see the shared disk.
SHARED_DEVICE = f"/dev/disk/by-id/virtio-{SHARED_DISK_SERIAL}"


@attrs.frozen
class VmSettings:
    """What every machine of a VM cluster gets.

    Attributes:
        disk_size: Size of the shared disk in bytes (sparse).
        memory_mib: Memory per VM.
        cpus: CPUs per VM.
        snapshots: Start (and revive) from saved states.
    """

    disk_size: int
    memory_mib: int = 1024
    cpus: int = 1
    snapshots: bool = True

    @classmethod
    def checked(
        cls, disk_size: int | str, memory_mib: int, cpus: int, snapshots: bool | None
    ) -> VmSettings:
        """Settings from user input.

        Raises:
            SpecError: A value out of range (the field is named).
        """
        size = rules.parse_size(disk_size)
        if size < 256 << 20:
            raise SpecError("disk_size", disk_size, "must be at least 256M (journals and slots)")
        if not 256 <= memory_mib <= 64 * 1024:
            raise SpecError("memory_mib", memory_mib, "must be between 256 and 65536")
        if not 1 <= cpus <= 64:
            raise SpecError("cpus", cpus, "must be between 1 and 64")
        return cls(size, memory_mib, cpus, snapshots_wanted(snapshots))


class VmMachines(Lifecycle):
    """The VM provisioner: the image, a shared disk, a switch, and one machine per node.

    Entering it builds (or reuses) the lab image, reaps what crashed owners left, makes a
    work directory with a sparse shared disk and an ssh key, starts a switch of its own and
    starts every machine at once. Leaving powers the machines off, stops the switch and
    removes the files.

    Args:
        spec: The nodes (names, numbers, interconnect addresses) and the interconnect.
        settings: Disk, memory, CPUs, saved states.
        recipe: The image recipe (used when ``image`` is not given).
        image: An image already built.
        cache_dir: Image cache.
        log_dir: Keep each machine's console and QEMU logs here.
        timeline: Where each machine's start is recorded.
        reporter: Receives the phases.

    Attributes:
        vms: The machines, node 1 first (after enter).
        image: The image they boot.
        switch: The interconnect switch (after enter).
        work_dir: The shared disk's and key's directory (after enter).
    """

    def __init__(
        self,
        spec: ClusterSpec,
        settings: VmSettings,
        *,
        recipe: ImageRecipe | None = None,
        image: LabImage | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        timeline: Timeline | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.recipe = recipe or ImageRecipe()
        self.image = image
        self.cache_dir = cache_dir
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.timeline = timeline if timeline is not None else Timeline()
        self.reporter: Reporter = reporter or LogReporter()
        self.work_dir: Path | None = None
        self.switch: VdeSwitch | None = None
        self.vms: list[VmNode] = []

    def describe(self) -> str:
        """Name for messages."""
        return f"the machines of {self.spec.name}"

    def _acquire(self) -> None:
        rep = self.reporter
        if self.image is None:
            with self.step("image"), phase(rep, "image"):
                self.image = build_image(self.recipe, cache_dir=self.cache_dir, reporter=rep)
        image = self.image
        with self.step("reap stale machines"):
            # What crashed owners left (machines, switches, cluster files), never a live one's.
            reap_stale()
        with self.step("work directory"):
            work = self._make_work_dir()
        with self.step("shared disk"):
            disk = work / "shared.raw"
            with disk.open("wb") as f:
                f.truncate(self.settings.disk_size)
            shared = DriveSpec(
                SHARED_DISK_ID, disk, SHARED_DISK_SERIAL, cache=_cache_mode(disk), shared=True
            )
        with self.step("ssh key"):
            key = SshKey.generate(work)
        with self.step("switch"):
            self.switch = self.enter(VdeSwitch(ports=max(8, 2 * len(self.spec.nodes))))
        with self.step("links"):
            # Each node plugs into a port switch of its own, joined to the cluster's switch
            # through a wirefilter: the lab degrades one node's link from outside its guest.
            links = [self.enter(LinkFilter(self.switch.socket)) for _ in self.spec.nodes]
        made = [
            VmNode(
                n,
                image,
                network=self.spec.network,
                shared=shared,
                switch=link.socket,
                memory_mib=self.settings.memory_mib,
                cpus=self.settings.cpus,
                ssh_key=key,
                timeline=self.timeline,
                log_dir=self.log_dir,
                reporter=rep,
                snapshots=self.settings.snapshots,
                link=link,
            )
            for n, link in zip(self.spec.nodes, links, strict=True)
        ]
        with self.step("boot nodes"), phase(rep, f"boot {len(made)} VMs"):
            with self.timeline.phase("boot"):
                outcome = run_parallel(made, lambda vm: vm.__enter__())
            for vm, _ in outcome.done:
                self.undo(vm.close, f"power off {vm.spec.name}")
            outcome.raise_failures("boot", lambda vm: vm.spec.name)
        self.vms = made

    def _make_work_dir(self) -> Path:
        # Owned like a machine's run directory: reap_stale removes it (shared disk, key)
        # once this process is gone.
        work = claim_dir(f"cluster-{self.spec.name}-", hostname=self.spec.name)
        self.work_dir = work
        self.undo(lambda: shutil.rmtree(work, ignore_errors=True), "remove the cluster's files")
        return work


class VmCluster(LabCluster):
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
        stack: ``"o2cb"`` (the seed's) or ``"pcmk"`` (corosync, dlm_controld and fs/dlm;
            the lab fences a dead node by powering it off, see
            [`PcmkCluster`][ocfs2lab.fs.pcmk.PcmkCluster]).
        pcmk: The pcmk stack's knobs (corosync's timers, fencing).

    Attributes:
        machines: The provisioner ([`VmMachines`][ocfs2lab.clusters.vms.VmMachines]).

    Raises:
        SpecError: Bad input, before anything is made.
    """

    #: The timing a VM cluster gets unless told otherwise (`VM_TIMING`).
    default_timing: TimingSpec = VM_TIMING
    #: The machines are discarded on exit (their overlays removed): their ledgers record the
    #: lab's changes, and nothing is restored.
    restores_nodes = False

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
        stack: StackName = "o2cb",
        pcmk: PcmkSpec | None = None,
    ) -> None:
        spec = (
            nodes
            if isinstance(nodes, ClusterSpec)
            else ClusterSpec.of_size(
                nodes, name=name, network=VM_NETWORK, timing=timing or self.default_timing
            )
        )
        settings = VmSettings.checked(disk_size, memory_mib, cpus, snapshots)
        super().__init__(
            spec,
            volume=volume,
            heartbeat_mode=heartbeat_mode,
            owned=True,  # the lab makes the disk: it may wipe and format it
            deploy=deploy,
            reporter=reporter,
            stack=stack,
            pcmk=pcmk,
        )
        self.device = SHARED_DEVICE
        self.machines = VmMachines(
            spec,
            settings,
            recipe=recipe,
            image=image,
            cache_dir=cache_dir,
            log_dir=log_dir,
            timeline=self.timeline,
            reporter=self.reporter,
        )
        self.nodes: list[VmNode] = []

    def describe(self) -> str:
        """Name for messages."""
        return f"VM cluster {self.spec.name}"

    # -- the provisioner's parts, as the cluster's -------------------------------------------
    @property
    def image(self) -> LabImage | None:
        """The image the machines boot (``None`` before it is built)."""
        return self.machines.image

    @property
    def recipe(self) -> ImageRecipe:
        """The image recipe."""
        return self.machines.recipe

    @property
    def vms(self) -> list[VmNode]:
        """The machines, node 1 first."""
        return self.machines.vms

    @property
    def switch(self) -> VdeSwitch | None:
        """The interconnect switch."""
        return self.machines.switch

    @property
    def work_dir(self) -> Path | None:
        """The directory of the shared disk and the ssh key."""
        return self.machines.work_dir

    @property
    def snapshots(self) -> bool:
        """Whether machines start from saved states."""
        return self.machines.settings.snapshots

    @property
    def memory_mib(self) -> int:
        """Memory per VM."""
        return self.machines.settings.memory_mib

    @property
    def cpus(self) -> int:
        """CPUs per VM."""
        return self.machines.settings.cpus

    @property
    def disk_size(self) -> int:
        """The shared disk's size in bytes."""
        return self.machines.settings.disk_size

    def kernel_provenance(self) -> dict[str, Any]:
        """The lab kernel the machines boot: release, recipe key, patches (names and
        SHA-256), the tree's commit and dirty flag, the profile; Debian's kernel gives its
        release only."""
        image = self.machines.image
        if image is not None and image.kernel_provenance:
            return dict(image.kernel_provenance)
        return super().kernel_provenance()

    # -- the pipeline's hooks ---------------------------------------------------------------
    def _provision(self) -> None:
        self.enter(self.machines)
        self.nodes = list(self.machines.vms)

    def _check_nodes(self, stack: ClusterStack) -> None:
        self.check_nodes()

    def check_nodes(self) -> None:
        """Check every machine (see
        [`check_machines`][ocfs2lab.clusters.machines.check_machines])."""
        check_machines(self.nodes, self.device, self.spec.network)

    def _kernel_tree(self, given: GcovTree | None) -> GcovTree | None:
        kernel = given or kernel_tree_of(self._image())
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
        return kernel

    def _default_tools(self) -> Sequence[GcovTree]:
        return [GcovTree.of_image(self._image())]

    def _image(self) -> LabImage:
        if self.machines.image is None:
            raise LifecycleError(f"{self.describe()}: not built yet")
        return self.machines.image

    # -- using ---------------------------------------------------------------------------
    def vm(self, which: str | int | Node) -> VmNode:
        """A VM node by name, number or node.

        Raises:
            SpecError: No such node.
        """
        node: VmNode = self.node(which)
        return node


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
