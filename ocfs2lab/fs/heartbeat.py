"""HeartbeatRegion: where o2hb writes, and whether it does.

In ``local`` mode (the default, and what the seed's deployment uses) the region is the OCFS2
volume itself: ``mount.ocfs2`` starts heartbeat on it and ``umount`` stops it, so there is no
region to add beforehand and ``cluster.conf`` carries no ``heartbeat:`` stanza. In
``global`` mode regions are added with ``o2cb add-heartbeat`` (which needs a formatted
device: on a blank one libocfs2 reports "Unknown code ocfs 8", OCFS2_ET_BAD_MAGIC) and
started with ``o2cb start-heartbeat``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from attrs import frozen

from ocfs2lab.errors import HostError
from ocfs2lab.formats.o2cb import parse_list_heartbeats
from ocfs2lab.fs.o2cb import CLUSTER_CONF, CONFIGFS, O2cbCluster
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.node.base import Node
from ocfs2lab.spec.storage import HeartbeatSpec
from ocfs2lab.wait import wait_until


@frozen
class RegionState:
    """One heartbeat region in a node's configfs.

    Attributes:
        uuid: The region's name (the volume UUID, upper-case hex).
        pid: The ``[o2hb-<UUID>]`` kernel thread's pid, 0 when not started.
        blocks: Heartbeat blocks (one per possible node).
    """

    uuid: str
    pid: int
    blocks: int

    @property
    def active(self) -> bool:
        """The heartbeat thread runs."""
        return self.pid > 0


def parse_region_listing(text: str) -> list[RegionState]:
    """Parse ``<uuid> <pid> <blocks>`` lines (what
    [`HeartbeatRegion.regions`][ocfs2lab.fs.heartbeat.HeartbeatRegion.regions] reads)."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and all(p.lstrip("-").isdigit() for p in parts[1:]):
            found.append(RegionState(parts[0], int(parts[1]), int(parts[2])))
    return found


# Print "<region> <pid> <blocks>" for each region directory of cluster "$1".
_LIST_REGIONS = (
    'for d in "$1"/heartbeat/*/; do [ -f "$d/pid" ] || continue; '
    'n=$(basename "$d"); echo "$n $(cat "$d/pid" 2>/dev/null || echo 0) '
    '$(cat "$d/blocks" 2>/dev/null || echo 0)"; done'
)


class HeartbeatRegion(Lifecycle):
    """The heartbeat region of a cluster, checked on every node.

    Args:
        cluster: The registered o2cb cluster.
        spec: Mode and device.
        nodes: The nodes (default: the cluster's).
    """

    def __init__(
        self, cluster: O2cbCluster, spec: HeartbeatSpec, nodes: Sequence[Node] | None = None
    ) -> None:
        self.cluster = cluster
        self.spec = spec
        self.nodes = tuple(nodes or cluster.nodes)
        self.region_uuids: list[str] = []

    def describe(self) -> str:
        """Name for messages."""
        return f"{self.spec.mode} heartbeat of {self.cluster.name}"

    def _acquire(self) -> None:
        with self.step("check heartbeat mode"):
            for node in self.nodes:
                mode = self.mode(node)
                if mode != self.spec.mode:
                    raise HostError(
                        f"{node.spec.name}: cluster {self.cluster.name} heartbeat mode is "
                        f"{mode!r}, not {self.spec.mode!r}",
                        hint="the mode comes from cluster.conf at register-cluster time",
                    )
                if (
                    self.spec.device
                    and not node.run(["test", "-b", self.spec.device], check=False, timeout=30).ok
                ):
                    raise HostError(f"{node.spec.name}: {self.spec.device} is not a block device")
        if self.spec.mode == "global":
            self._start_global()

    def _start_global(self) -> None:
        """Add the device as the cluster's region on node 1, give every node the resulting
        cluster.conf, and start heartbeat once per kernel."""
        if not self.spec.device:
            raise HostError("global heartbeat needs a region device (HeartbeatSpec.device)")
        first, name, device = self.nodes[0], self.cluster.name, self.spec.device
        with self.step("add heartbeat region"):
            first.run(["o2cb", "add-heartbeat", name, device], timeout=120)
        self.undo(
            lambda: first.run(["o2cb", "remove-heartbeat", name, device], timeout=120),
            "remove heartbeat region",
        )
        with self.step("verify heartbeat stanza"):
            listed = first.run(["o2cb", "list-heartbeats", name], timeout=60).stdout
            self.region_uuids = [hb.region for hb in parse_list_heartbeats(listed)]
            if not self.region_uuids:
                raise HostError(f"node 1's cluster.conf has no heartbeat: stanza for {name}")
            conf = first.get_file(CLUSTER_CONF)
            for node in self.nodes[1:]:
                node.put_file(CLUSTER_CONF, conf)
        kernels: set[str] = set()
        for node in self.nodes:
            boot_id = node.boot_id()
            if boot_id in kernels:
                continue
            with self.step(f"start heartbeat on {node.spec.name}"):
                node.run(["o2cb", "start-heartbeat", name], timeout=180)
            kernels.add(boot_id)
            self.undo(
                partial(node.run, ["o2cb", "stop-heartbeat", name], timeout=180),
                f"stop heartbeat on {node.spec.name}",
            )
        with self.step("heartbeat active"):
            for uuid in self.region_uuids:
                self.wait_active(uuid)
        with self.step("cluster online"):
            self.cluster.wait_online()

    def mode(self, node: Node) -> str:
        """The cluster's heartbeat mode in ``node``'s kernel (``local`` or ``global``)."""
        path = f"{CONFIGFS}/cluster/{self.cluster.name}/heartbeat/mode"
        return node.run(["cat", path], timeout=30).stdout.strip()

    def regions(self, node: Node) -> list[RegionState]:
        """The regions ``node``'s kernel knows for this cluster."""
        base = f"{CONFIGFS}/cluster/{self.cluster.name}"
        res = node.run(["sh", "-c", _LIST_REGIONS, "sh", base], check=False, timeout=30)
        return parse_region_listing(res.stdout)

    def wait_active(self, uuid: str, timeout: float = 120.0) -> None:
        """Wait until every node heartbeats on region ``uuid`` (after a local-mode mount).

        Raises:
            WaitTimeout: Some node does not heartbeat on it.
        """
        want = uuid.replace("-", "").upper()

        def idle_nodes() -> list[str]:
            return [
                n.spec.name
                for n in self.nodes
                if not any(r.uuid == want and r.active for r in self.regions(n))
            ]

        wait_until(
            lambda: not idle_nodes() or None,
            what=f"heartbeat on region {want} on every node",
            timeout=timeout,
        )
