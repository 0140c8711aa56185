"""SshCluster: the one pipeline on machines that exist already, one kernel each.

``with SshCluster(nodes, device, owned=True) as c:`` checks the machines
([`SshNode`][ocfs2lab.node.ssh.SshNode]) before changing anything on any of them, then runs
the pipeline of [`LabCluster`][ocfs2lab.clusters.base.LabCluster] on them. Every node's kernel
messages go to one [`Timeline`][ocfs2lab.observe.timeline.Timeline], with the lab's own
actions. The lab has no power, CPU, link or disk control over such machines, so faults are
refused on them; [`VmCluster`][ocfs2lab.clusters.vms.VmCluster] has all four.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ocfs2lab.clusters.base import LabCluster
from ocfs2lab.errors import HostError, OwnershipError, SpecError
from ocfs2lab.node.ssh import SshNode
from ocfs2lab.observe.timeline import Timeline
from ocfs2lab.parallel import run_parallel
from ocfs2lab.report import Reporter
from ocfs2lab.spec.cluster import ClusterSpec, NetworkSpec, TimingSpec
from ocfs2lab.spec.storage import VolumeSpec

log = logging.getLogger(__name__)


def check_machines(nodes: Sequence[SshNode], device: str, network: NetworkSpec) -> None:
    """Check machines before anything is changed on any of them.

    Each must answer, be named as its spec (o2cb marks the local node by hostname), see
    the device, have its interconnect address in ``network``, and run a kernel of its own.

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
        if not node.is_block_device(device):
            raise HostError(f"{node.spec.name}: {device} is not a block device there")
        node.check_interconnect(network)
        return node.boot_id()

    outcome = run_parallel(list(nodes), check)
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


def check_device_path(device: str) -> str:
    """The shared device's path, checked.

    Raises:
        SpecError: Not an absolute path.
    """
    if not device.startswith("/"):
        raise SpecError("device", device, "must be an absolute path (/dev/disk/by-id/...)")
    return device


class SshCluster(LabCluster):
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
        device = check_device_path(device)
        super().__init__(
            spec,
            volume=volume,
            heartbeat_mode=heartbeat_mode,
            owned=owned,
            timeline=timeline,
            reporter=reporter,
        )
        # The machines exist: they are the cluster's from the start.
        self.nodes: list[SshNode] = node_list
        self.device = device

    def _provision(self) -> None:
        """Nothing to make: the machines and the device exist."""

    def _check_nodes(self) -> None:
        if not self.owned:
            raise OwnershipError(
                f"refusing to wipe and format {self.device}: the lab did not create it",
                hint="pass owned=True only for a device you mean to lose",
            )
        self.check_nodes()

    def check_nodes(self) -> None:
        """Check every node before anything is changed on any of them (see
        [`check_machines`][ocfs2lab.clusters.machines.check_machines]).

        Raises:
            HostError: A node fails a check.
        """
        check_machines(self.nodes, self.device, self.spec.network)


def _network_of(nodes: Sequence[SshNode]) -> NetworkSpec:
    """The smallest /24 holding node 1's address (a default for SSH machines)."""
    first = nodes[0].spec.address
    subnet = f"{first.exploded.rsplit('.', 1)[0]}.0/24"
    return NetworkSpec(name="ocfs2-interconnect", subnet=subnet, reserve_gateway=False)
