"""Cluster: the seed's whole deployment on one host, as one context manager.

``with Cluster(host, nodes=3) as c:`` runs, in the seed's order: preflight checks, the DRBD
device, the host's OCFS2 modules, the Docker network and the privileged node containers
(this module's provisioner), then the one pipeline of
[`LabCluster`][ocfs2lab.clusters.base.LabCluster]: o2cb bootstrap on node 1 and join on the
others, mkfs.ocfs2 and the mounts. Leaving the block undoes all of it in reverse; a failure at
any step undoes what was built and says which step failed and why.

Node containers share the host's kernel, so the cluster has ONE kernel node whatever the
number of containers: [`status`][ocfs2lab.clusters.base.LabCluster.status] says so, measured
from the nodes' boot ids. The timeline follows that one kernel: the host's log.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from functools import partial

from ocfs2lab.cleanup import ocfs2_mounts, registered_clusters
from ocfs2lab.clusters.base import LabCluster
from ocfs2lab.coverage import GcovTree, kernel_tree_of
from ocfs2lab.errors import OwnershipError
from ocfs2lab.host.base import Host, Shell
from ocfs2lab.host.changes import OCFS2_MODULES, unload_ocfs2_modules
from ocfs2lab.host.drbd import DrbdResource
from ocfs2lab.host.state import Ledger, all_ledgers
from ocfs2lab.node.container import NODE_IMAGE, ContainerNode, ContainerSettings, DockerNetwork
from ocfs2lab.observe.timeline import Timeline
from ocfs2lab.parallel import run_parallel
from ocfs2lab.report import Reporter, phase
from ocfs2lab.spec.cluster import ClusterSpec, NetworkSpec, TimingSpec
from ocfs2lab.spec.stack import PcmkSpec, StackName
from ocfs2lab.spec.storage import DrbdSpec, VolumeSpec
from ocfs2lab.vm.recipe import LabImage

log = logging.getLogger(__name__)

#: What the host loads for the o2cb stack (container nodes cannot load modules themselves).
HOST_MODULES = ("ocfs2_stack_o2cb", "ocfs2_dlmfs")

ONE_KERNEL_NOTE = (
    "node containers share the host's kernel: configfs (the registered cluster, which node "
    "is local) is global to a kernel, so the kernel sees ONE OCFS2 node; killing a container "
    "triggers no heartbeat death and no DLM recovery. Use VM nodes for failure experiments."
)


class Cluster(LabCluster):
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
        node_image: The node containers' Docker image (``ocfs2-node:latest``, built in the
            lab image).
        lab_id: The lab's id (a fresh one by default); labels and ledger use it.
        force: Clean OCFS2 and DRBD state on the host that no lab owns (mounts, clusters, a
            same-named DRBD resource) instead of refusing.
        heartbeat_mode: ``"local"`` (heartbeat on the volume, started by mount) or
            ``"global"`` (the volume's device added as a global region and started with
            ``o2cb start-heartbeat`` before the mounts).
        timeline: Where the host kernel's messages and the lab's actions go.
        reporter: Receives the phases.
        image: The earlier name of ``node_image`` (deprecated).
        stack: ``"o2cb"`` only: the containers share the host's kernel, which is one DLM
            node and holds one stack; ``"pcmk"`` is refused (use a VM or SSH cluster).
        pcmk: Refused with the stack.

    Raises:
        SpecError: Bad input, before anything is touched.
    """

    #: Container nodes share the host's kernel: one DLM node, one stack (o2cb only).
    kernel_per_node = False

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
        node_image: str = NODE_IMAGE,
        lab_id: str | None = None,
        force: bool = False,
        heartbeat_mode: str = "local",
        timeline: Timeline | None = None,
        reporter: Reporter | None = None,
        image: str | None = None,
        stack: StackName = "o2cb",
        pcmk: PcmkSpec | None = None,
    ) -> None:
        spec = (
            nodes
            if isinstance(nodes, ClusterSpec)
            else ClusterSpec.of_size(nodes, name=name, network=network, timing=timing)
        )
        super().__init__(
            spec,
            volume=volume,
            heartbeat_mode=heartbeat_mode,
            owned=True,  # the lab makes the DRBD device: it may format it
            timeline=timeline,
            reporter=reporter,
            lab_id=lab_id,
            stack=stack,
            pcmk=pcmk,
        )
        if image is not None:
            warnings.warn(
                "Cluster(image=...) is now Cluster(node_image=...)",
                DeprecationWarning,
                stacklevel=2,
            )
            node_image = image
        self.host = host
        self.drbd_spec = drbd or DrbdSpec()
        self.node_image = node_image
        self.force = force
        self.ledger = Ledger(host, self.lab_id)
        self.drbd: DrbdResource | None = None
        self.nodes: list[ContainerNode] = []

    #: The containers' changes go with them; the host's are in the host's ledger.
    records_changes = False

    def describe(self) -> str:
        """Name for messages."""
        return f"cluster {self.spec.name} (lab {self.lab_id})"

    # -- the provisioner --------------------------------------------------------------------
    def _provision(self) -> None:
        rep = self.reporter
        with self.step("preflight"), phase(rep, "preflight"):
            client = self.host.docker()
            self._check_host_ocfs2()
            client.images.get(self.node_image)
        with self.step("drbd"), phase(rep, "drbd"):
            self.drbd = self.enter(
                DrbdResource(self.host, self.drbd_spec, self.ledger, force=self.force)
            )
            self.device = self.drbd.device
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
            settings = ContainerSettings(image=self.node_image, devices=[self.device])
            made = [
                ContainerNode(client, n, self.spec.network, settings, self.lab_id)
                for n in self.spec.nodes
            ]
            outcome = run_parallel(made, lambda n: n.__enter__())
            for node, _ in outcome.done:
                self.undo(node.close, f"remove {node.name}")
            outcome.raise_failures("create container", lambda n: n.spec.name)
            self.nodes = made

    def _feed_timeline(self) -> None:
        # The containers' one kernel is the host's: its log is every node's (a lab VM's
        # console, or dmesg polled on another host).
        source = self.host.feed_timeline(self.timeline)
        self.undo(source.close, f"stop the timeline feed of {self.host.name}")

    def _stack_starting(self) -> None:
        self.ledger.record("cluster", self.spec.name, device=self.device)
        # Runs after the cluster is unregistered (undos unwind in reverse).
        self.undo(self._forget_cluster, "forget cluster")

    def _shared_kernel_note(self) -> str:
        return ONE_KERNEL_NOTE

    def _kernel_machines(self) -> Mapping[str, Shell]:
        return {"host": self.host}

    def _lab_image(self) -> LabImage | None:
        image = getattr(self.host, "image", None)
        return image if isinstance(image, LabImage) else None

    def _kernel_tree(self, given: GcovTree | None) -> GcovTree | None:
        image = self._lab_image()
        if given is None and image is not None:
            return kernel_tree_of(image)
        return given

    def _default_tools(self) -> Sequence[GcovTree]:
        image = self._lab_image()
        return [GcovTree.of_image(image)] if image is not None else []

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

    @property
    def image(self) -> str:
        """The earlier name of [`node_image`][ocfs2lab.clusters.containers.Cluster]
        (deprecated)."""
        warnings.warn("Cluster.image is now Cluster.node_image", DeprecationWarning, stacklevel=2)
        return self.node_image


#: The name that says what it is (`Cluster` stays the seed's name for it).
ContainerCluster = Cluster

__all__ = ["HOST_MODULES", "ONE_KERNEL_NOTE", "Cluster", "ContainerCluster"]
