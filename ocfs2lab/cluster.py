"""Cluster: the seed's whole deployment on one host, as one context manager.

``with Cluster(host, nodes=3) as c:`` runs, in the seed's order: preflight checks, the DRBD
device, the host's OCFS2 modules, the Docker network and the privileged node containers,
o2cb bootstrap on node 1 and join on the others, mkfs.ocfs2 and the mounts. Leaving the block
undoes all of it in reverse; a failure at any step undoes what was built and says which step
failed and why.

Node containers share the host's kernel, so the cluster has ONE kernel node whatever the
number of containers: [`Cluster.status`][ocfs2lab.cluster.Cluster.status] says so, measured from the
nodes' boot ids.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from attrs import frozen

from ocfs2lab.cleanup import (
    OCFS2_MODULES,
    ocfs2_mounts,
    registered_clusters,
    unload_ocfs2_modules,
)
from ocfs2lab.coverage import Coverage, GcovTree, kernel_tree_of
from ocfs2lab.errors import OwnershipError
from ocfs2lab.fs.heartbeat import HeartbeatRegion
from ocfs2lab.fs.o2cb import O2cbCluster
from ocfs2lab.fs.volume import FsckReport, OcfsVolume
from ocfs2lab.fs.workload import SharedIoWorkload, WorkloadReport
from ocfs2lab.host.base import Host
from ocfs2lab.host.drbd import DrbdResource
from ocfs2lab.host.state import Ledger, all_ledgers, check_lab_id, new_lab_id
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.node.container import ContainerNode, ContainerSettings, DockerNetwork
from ocfs2lab.parallel import run_parallel
from ocfs2lab.report import LogReporter, Reporter, phase
from ocfs2lab.spec.cluster import ClusterSpec, NetworkSpec, TimingSpec
from ocfs2lab.spec.storage import DrbdSpec, HeartbeatSpec, VolumeSpec
from ocfs2lab.vm.recipe import LabImage

log = logging.getLogger(__name__)

#: What the host loads for the o2cb stack (container nodes cannot load modules themselves).
HOST_MODULES = ("ocfs2_stack_o2cb", "ocfs2_dlmfs")

ONE_KERNEL_NOTE = (
    "node containers share the host's kernel: configfs (the registered cluster, which node "
    "is local) is global to a kernel, so the kernel sees ONE OCFS2 node; killing a container "
    "triggers no heartbeat death and no DLM recovery. Use VM nodes for failure experiments."
)


@frozen
class ClusterStatus:
    """What the cluster really is.

    Attributes:
        name: Cluster name.
        nodes: Node names.
        kernel_nodes: Distinct kernels among the nodes (boot ids): the real OCFS2 nodes.
        online: Nodes whose ``o2cb cluster-status`` says online.
        mounted: Nodes with the volume mounted.
        note: Why ``kernel_nodes`` may be smaller than ``len(nodes)``.
    """

    name: str
    nodes: tuple[str, ...]
    kernel_nodes: int
    online: tuple[str, ...]
    mounted: tuple[str, ...]
    note: str


class Cluster(Lifecycle):
    """The seed's container deployment on a host.

    Args:
        host: A host whose kernel has OCFS2 and DRBD, with Docker (the lab VM by default
            in tests and examples).
        nodes: Number of node containers, or a full
            [`ClusterSpec`][ocfs2lab.spec.cluster.ClusterSpec].
        name: Cluster name (when ``nodes`` is a number).
        drbd: The DRBD device spec.
        volume: Label, mount point and sizes of the OCFS2 volume.
        network: The Docker network (default ``ocfs2-network``, 172.20.0.0/16).
        timing: Heartbeat and o2net knobs.
        image: Node image (``ocfs2-node:latest``, built in the lab image).
        lab_id: The lab's id (a fresh one by default); labels and ledger use it.
        force: Clean OCFS2 and DRBD state on the host that no lab owns (mounts, clusters, a
            same-named DRBD resource) instead of refusing.
        heartbeat_mode: ``"local"`` (heartbeat on the volume, started by mount) or
            ``"global"`` (the volume's device added as a global region and started with
            ``o2cb start-heartbeat`` before the mounts).
        reporter: Receives the phases.

    Raises:
        SpecError: Bad input, before anything is touched.
    """

    def __init__(
        self,
        host: Host,
        nodes: int | ClusterSpec = 3,
        *,
        name: str = "ocfs2cluster",
        drbd: DrbdSpec | None = None,
        volume: VolumeSpec | None = None,
        network: NetworkSpec | None = None,
        timing: TimingSpec | None = None,
        image: str = "ocfs2-node:latest",
        lab_id: str | None = None,
        force: bool = False,
        heartbeat_mode: str = "local",
        reporter: Reporter | None = None,
    ) -> None:
        self.host = host
        self.spec = (
            nodes
            if isinstance(nodes, ClusterSpec)
            else ClusterSpec.of_size(nodes, name=name, network=network, timing=timing)
        )
        self.drbd_spec = drbd or DrbdSpec()
        self.volume_spec = volume or VolumeSpec()
        self.image = image
        self.lab_id = check_lab_id(lab_id or new_lab_id())
        self.force = force
        self.heartbeat_mode = HeartbeatSpec(mode=heartbeat_mode).mode  # type: ignore[arg-type]
        self.reporter: Reporter = reporter or LogReporter()
        self.ledger = Ledger(host, self.lab_id)
        self.drbd: DrbdResource | None = None
        self.nodes: list[ContainerNode] = []
        self.o2cb: O2cbCluster | None = None
        self.volume: OcfsVolume | None = None
        self.heartbeat: HeartbeatRegion | None = None

    def describe(self) -> str:
        """Name for messages."""
        return f"cluster {self.spec.name} (lab {self.lab_id})"

    # -- building -----------------------------------------------------------------------
    def _acquire(self) -> None:
        rep = self.reporter
        with self.step("preflight"), phase(rep, "preflight"):
            client = self.host.docker()
            self._check_host_ocfs2()
            client.images.get(self.image)
        with self.step("drbd"), phase(rep, "drbd"):
            self.drbd = self.enter(
                DrbdResource(self.host, self.drbd_spec, self.ledger, force=self.force)
            )
        with self.step("host modules"), phase(rep, "host modules"):
            before = self.host.loaded_modules()
            loaded = [m for m in OCFS2_MODULES if m not in before]
            if loaded:
                self.ledger.record("modules", "ocfs2", names=list(loaded))
            self.host.load_modules(*HOST_MODULES)
        if loaded:
            self.undo(partial(self._unload_ocfs2, loaded), "unload OCFS2 modules")
        with self.step("containers"), phase(rep, "containers"):
            self.enter(DockerNetwork(client, self.spec.network, self.lab_id))
            settings = ContainerSettings(image=self.image, devices=[self.drbd.device])
            made = [
                ContainerNode(client, n, self.spec.network, settings, self.lab_id)
                for n in self.spec.nodes
            ]
            outcome = run_parallel(made, lambda n: n.__enter__())
            for node, _ in outcome.done:
                self.undo(node.close, f"remove {node.name}")
            outcome.raise_failures("create container", lambda n: n.spec.name)
            self.nodes = made
        with self.step("o2cb"), phase(rep, "o2cb bootstrap and join"):
            self.ledger.record("cluster", self.spec.name, device=self.drbd.device)
            # Runs after the cluster is unregistered (undos unwind in reverse).
            self.undo(self._forget_cluster, "forget cluster")
            self.o2cb = self.enter(
                O2cbCluster(self.nodes, self.spec, heartbeat_mode=self.heartbeat_mode)
            )
        hb = HeartbeatSpec(mode=self.heartbeat_mode, device=self.drbd.device)
        self.heartbeat = HeartbeatRegion(self.o2cb, hb)
        with self.step("volume"), phase(rep, "mkfs and mount"):
            self.volume = self.enter(
                OcfsVolume(
                    self.nodes,
                    self.drbd.device,
                    self.volume_spec,
                    self.spec.name,
                    owned=True,
                    heartbeat=self.heartbeat,
                )
            )
        with self.step("heartbeat started"):
            # Local mode: mounting started heartbeat on the volume itself.
            self.heartbeat.wait_active(self.volume.uuid())

    def _forget_cluster(self) -> None:
        """Strike the cluster from the ledger once the kernel no longer has it."""
        if not self.host.exists(f"/sys/kernel/config/cluster/{self.spec.name}"):
            self.ledger.forget("cluster", self.spec.name)

    def _check_host_ocfs2(self) -> None:
        """Refuse a host whose kernel already has an o2cb cluster or OCFS2 mounts.

        A kernel holds one o2cb cluster at a time. One that a lab's ledger names belongs to
        that lab (which may still be running): it is never touched here, only reported.
        Foreign state is cleaned only with ``force``.

        Raises:
            OwnershipError: The host has clusters or OCFS2 mounts.
        """
        owners = {
            e.key: lab
            for lab, es in all_ledgers(self.host).items()
            for e in es
            if e.kind == "cluster"
        }
        clusters = registered_clusters(self.host)
        mounts = ocfs2_mounts(self.host)
        labs = {c: owners[c] for c in clusters if c in owners}
        foreign = [c for c in clusters if c not in owners]
        if labs:
            raise OwnershipError(
                f"{self.host.name} runs lab clusters {labs} already",
                hint="end that lab first (`ocfs2lab down --lab ID`, or `ocfs2lab cleanup` "
                "after a crash)",
            )
        if (foreign or mounts) and not self.force:
            raise OwnershipError(
                f"{self.host.name} has OCFS2 state no lab created: clusters {foreign}, "
                f"mounts {mounts}",
                hint="unmount and unregister them yourself, or pass force=True",
            )
        for mp in mounts:
            self.host.run(["umount", mp], timeout=300)
        for name in foreign:
            self.host.run(["o2cb", "unregister-cluster", name], timeout=120)

    def _unload_ocfs2(self, names: list[str]) -> None:
        """Unload the OCFS2 modules the lab loaded (``names``), in the seed's order.

        Raises:
            HostError: Modules stay loaded (advice to reboot when o2hb threads remain).
        """
        unload_ocfs2_modules(self.host, names)
        self.ledger.forget("modules", "ocfs2")

    # -- using ---------------------------------------------------------------------------
    def status(self) -> ClusterStatus:
        """The cluster's honest status: how many real kernel nodes it has, and why."""
        kernels = {n.boot_id() for n in self.nodes}
        online = tuple(n.spec.name for n in self.nodes if self.o2cb and self.o2cb.online(n))
        mp = self.volume_spec.mount_point
        mounted = tuple(
            n.spec.name
            for n in self.nodes
            if n.run(["mountpoint", "-q", mp], check=False, timeout=30).ok
        )
        note = ONE_KERNEL_NOTE if len(kernels) < len(self.nodes) else ""
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
        """Run the seed's I/O test on every node at once (see
        [`SharedIoWorkload`][ocfs2lab.fs.workload.SharedIoWorkload])."""
        with phase(self.reporter,
        "workload"):
            return (workload or SharedIoWorkload()).run(
                self.nodes, self.volume_spec.mount_point, report_root
            )

    def coverage(
        self, kernel: GcovTree | None = None, tools: Sequence[GcovTree] | None = None
    ) -> Coverage:
        """Coverage of this deployment, as the seed collects it: the host's kernel (the one
        kernel every container shares) and the tools run in the node containers.

        Args:
            kernel: The gcov tree of the host's kernel. Default: the lab kernel when the
                host is the lab VM (none for any other host).
            tools: Instrumented programs the containers run. Default: the lab image's
                coverage probe (``o2probe``) when the host is the lab VM.
        """
        image = getattr(self.host, "image", None)
        if kernel is None and isinstance(image, LabImage):
            kernel = kernel_tree_of(image)
        if tools is None:
            tools = [GcovTree.of_image(image)] if isinstance(image, LabImage) else []
        return Coverage(
            kernel,
            {"host": self.host} if kernel else {},
            tuple(tools),
            {n.spec.name: n for n in self.nodes} if tools else {},
        )

    def fsck(self) -> FsckReport:
        """``fsck.ocfs2 -fn`` of the volume, run on node 1 with the volume unmounted.

        The volume is unmounted on every node first (and stays unmounted).
        """
        assert self.volume is not None
        return self.volume.fsck_unmounted()
