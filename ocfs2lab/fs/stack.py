"""What both cluster stacks share: the nodes, their recorded changes, and "online".

[`O2cbCluster`][ocfs2lab.fs.o2cb.O2cbCluster] and
[`PcmkCluster`][ocfs2lab.fs.pcmk.PcmkCluster] make their changes on each node through the
node's [`MachineChanges`][ocfs2lab.host.changes.MachineChanges]; this base keeps the list of
what each node got and gives it back, on every node at once, when the stack is torn down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import cast

from ocfs2lab.errors import SpecError
from ocfs2lab.host.base import Shell
from ocfs2lab.host.changes import MachineChanges
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.node.base import Node
from ocfs2lab.parallel import run_parallel
from ocfs2lab.spec.cluster import ClusterSpec
from ocfs2lab.wait import wait_until

log = logging.getLogger(__name__)


def unrecorded(node: Node) -> MachineChanges:
    """Changes made on ``node`` without a ledger (a container: they go with it)."""
    return MachineChanges(cast(Shell, node), None)


class ClusterStack(Lifecycle):
    """Base of the stacks: the nodes, their changes, the undo of those changes.

    Args:
        nodes: The nodes, node 1 first; ``spec.nodes`` lists the same names.
        spec: Cluster name, node list, timing.
        online_timeout: Seconds to wait for every node to report the cluster online.
        changes: Each node's [`MachineChanges`][ocfs2lab.host.changes.MachineChanges]
            (default: made, not recorded).
        restore: Give each node back what the stack changed there on exit; off for
            machines that are discarded right after (a VM node's overlay), whose ledger then
            only records.

    Raises:
        SpecError: The nodes are not the spec's, in order.
    """

    #: The stack's name (``mkfs.ocfs2 --cluster-stack``).
    stack = ""

    def __init__(
        self,
        nodes: Sequence[Node],
        spec: ClusterSpec,
        *,
        online_timeout: float = 180.0,
        changes: Callable[[Node], MachineChanges] = unrecorded,
        restore: bool = True,
    ) -> None:
        if [n.spec.name for n in nodes] != [n.name for n in spec.nodes]:
            raise SpecError(
                "cluster.nodes",
                [n.spec.name for n in nodes],
                f"must be the spec's nodes in order: {[n.name for n in spec.nodes]}",
            )
        self.nodes = tuple(nodes)
        self.spec = spec
        self.online_timeout = online_timeout
        self.changes = changes
        self.restore = restore
        #: Per node, the changes made there, in order (undone in reverse on exit).
        self._made: dict[str, list[tuple[str, str]]] = {n.spec.name: [] for n in nodes}

    @property
    def name(self) -> str:
        """The cluster name."""
        return self.spec.name

    def _made_on(self, node: Node, kind: str, key: str, changed: bool) -> None:
        if changed and self.changes(node).ledger is not None:
            self._made[node.spec.name].append((kind, key))

    def _restore_nodes(self) -> None:
        """Undo, on every node that is up and in reverse, the changes made there.

        Raises:
            HostError: Some node could not be restored (every node was still tried; what
                is left stays in its ledger for ``ocfs2lab cleanup``).
        """
        if not self.restore:
            return

        def restore(node: Node) -> None:
            if not node.up:
                log.info("%s is down: its changes stay in its ledger", node.spec.name)
                return
            ch = self.changes(node)
            for kind, key in reversed(self._made[node.spec.name]):
                ch.undo(kind, key)
            self._made[node.spec.name].clear()

        run_parallel(list(self.nodes), restore).raise_failures("restore", lambda n: n.spec.name)

    def _check_member(self, node: Node) -> None:
        if node not in self.nodes:
            raise SpecError("node", node.spec.name, "is not a node of this cluster")

    # -- what every stack answers ------------------------------------------------------------
    def online(self, node: Node) -> bool:
        """True when ``node`` takes part in the cluster."""
        raise NotImplementedError

    def rejoin(self, node: Node) -> None:
        """Join a node again after it was booted anew (a revive after a kill or a fence)."""
        raise NotImplementedError

    def wait_online(self, nodes: Sequence[Node] | None = None) -> None:
        """Wait until every node (or those given) reports the cluster online.

        Raises:
            WaitTimeout: Some node did not come online in time.
        """
        which = list(self.nodes if nodes is None else nodes)

        def all_online() -> bool | None:
            missing = [n.spec.name for n in which if not self.online(n)]
            return True if not missing else None

        wait_until(
            all_online,
            what=f"cluster {self.name} online on {', '.join(n.spec.name for n in which)}",
            timeout=self.online_timeout,
            interval=0.5,
        )


__all__ = ["ClusterStack", "unrecorded"]
