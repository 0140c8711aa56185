"""Faults as restoring context managers that record themselves on the timeline.

``with cluster.freeze(node):`` freezes the node on entry and thaws it on exit, whatever
happens in the block; the timeline gets a ``FAULT_INJECTED`` event the moment the fault
took effect and a ``FAULT_HEALED`` event when it was lifted.

On a VM node (one kernel):

* [`Kill`][ocfs2lab.experiment.faults.Kill]: SIGKILL of the QEMU process, a hard power-off. Nothing
  is restored on exit: the node stays down until revived
  ([`revive`][ocfs2lab.kernel_cluster.VmCluster.revive]).
* [`Freeze`][ocfs2lab.experiment.faults.Freeze]: QMP ``stop``; ``cont`` on exit.
* [`Partition`][ocfs2lab.experiment.faults.Partition]: QMP ``set_link`` of the interconnect NIC off;
  on on exit. The node's ssh NIC and its serial console stay up, so the lab keeps seeing it.
* [`DiskStall`][ocfs2lab.experiment.faults.DiskStall]: QMP block throttling of the shared disk to
  one byte per second; lifted on exit. The guest sees requests that never complete and cannot go
  around them.

On a container node the Docker equivalents run (``docker kill``, ``pause``, ``network
disconnect``). They do not kill a kernel node: containers of one host share one kernel,
which the cluster sees as one OCFS2 node, so no heartbeat dies and no DLM recovery runs.
The events they record say so in their ``note``.
"""

from __future__ import annotations

import logging
import time
from types import TracebackType
from typing import Any, ClassVar

from ocfs2lab.errors import SpecError
from ocfs2lab.node.base import Node
from ocfs2lab.node.container import ContainerNode
from ocfs2lab.node.vm import VmNode
from ocfs2lab.observe.timeline import LabEventKind, Timeline

log = logging.getLogger(__name__)

CONTAINER_NOTE = (
    "container nodes share one kernel: this fault does not kill an OCFS2 node (no heartbeat "
    "death, no DLM recovery); use VM nodes for that"
)


class Fault:
    """Base of the faults: inject on enter, restore on exit, both on the timeline.

    Args:
        node: The node to fault.
        timeline: Where the fault's start and end are recorded (none: not recorded).

    Attributes:
        injected_at: Host time the fault took effect.
        healed_at: Host time it was lifted (``None`` while active, and for a kill).
    """

    #: The fault's name on the timeline (``data["fault"]``).
    name: ClassVar[str] = "fault"

    def __init__(self, node: Node, timeline: Timeline | None = None) -> None:
        self.node = node
        self.timeline = timeline
        self.injected_at: float | None = None
        self.healed_at: float | None = None
        self._check()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.node.spec.name})"

    def _check(self) -> None:
        if not isinstance(self.node, VmNode | ContainerNode):
            raise SpecError(
                "fault.node",
                self.node.spec.name,
                f"a {self.name} fault needs a VM node or a container node, not a "
                f"{self.node.kind} node (the lab has no power control over SSH machines)",
            )

    # -- what subclasses implement ---------------------------------------------------------
    def _inject(self) -> None:
        raise NotImplementedError

    def _heal(self) -> None:
        raise NotImplementedError

    # -- the context manager ---------------------------------------------------------------
    def _data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"fault": self.name, "node_kind": self.node.kind}
        if self.node.kind == "container":
            data["note"] = CONTAINER_NOTE
        return data

    def _record(self, kind: LabEventKind, when: float, verb: str) -> None:
        if self.timeline is not None:
            self.timeline.record(
                kind,
                f"{self.name} {self.node.spec.name}: {verb}",
                node=self.node.spec.name,
                time=when,
                data=self._data(),
            )

    def inject(self) -> float:
        """Inject the fault now; returns the host time it took effect."""
        self._inject()
        when = self.timeline.now() if self.timeline is not None else _now()
        self.injected_at = when
        self._record(LabEventKind.FAULT_INJECTED, when, "injected")
        log.info("%s: %s injected", self.node.spec.name, self.name)
        return when

    def heal(self) -> float | None:
        """Lift the fault now (idempotent); returns the host time, or ``None`` for a kill."""
        if self.injected_at is None or self.healed_at is not None:
            return self.healed_at
        if not self._heal_possible():
            return None
        if self._node_running():
            self._heal()
            verb = "healed"
        else:
            # The node died under the fault (it fenced itself): nothing left to restore.
            verb = "lifted; the node is down"
        when = self.timeline.now() if self.timeline is not None else _now()
        self.healed_at = when
        self._record(LabEventKind.FAULT_HEALED, when, verb)
        log.info("%s: %s %s", self.node.spec.name, self.name, verb)
        return when

    def _node_running(self) -> bool:
        if isinstance(self.node, VmNode):
            return self.node.running
        if isinstance(self.node, ContainerNode):
            container = self.node.container
            if container is None:
                return False
            container.reload()
            return bool(container.status in ("running", "paused"))
        return True

    def _heal_possible(self) -> bool:
        return True

    def __enter__(self) -> Fault:
        self.inject()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.heal()


def _now() -> float:
    return time.time()


def _container(node: Node) -> Any:
    container = node.container if isinstance(node, ContainerNode) else None
    if container is None:
        raise SpecError("fault.node", node.spec.name, "the container does not exist")
    return container


def _vm(node: Node) -> VmNode:
    if not isinstance(node, VmNode):
        raise SpecError("fault.node", node.spec.name, "is not a VM node")
    return node


def _network(node: ContainerNode) -> Any:
    return node.client.networks.get(node.network.name)


class Kill(Fault):
    """Hard power-off: the node's kernel dies at once. Not undone on exit (revive it)."""

    name = "kill"

    def _inject(self) -> None:
        if isinstance(self.node, ContainerNode):
            _container(self.node).kill()
        else:
            _vm(self.node).kill()

    def _heal_possible(self) -> bool:
        return False


class Freeze(Fault):
    """Freeze the node (its CPUs stop); thaw on exit."""

    name = "freeze"

    def _inject(self) -> None:
        if isinstance(self.node, ContainerNode):
            _container(self.node).pause()
        else:
            _vm(self.node).freeze()

    def _heal(self) -> None:
        if isinstance(self.node, ContainerNode):
            _container(self.node).unpause()
        else:
            _vm(self.node).thaw()


class Partition(Fault):
    """Cut the node's interconnect; heal on exit."""

    name = "partition"

    def _inject(self) -> None:
        if isinstance(self.node, ContainerNode):
            _network(self.node).disconnect(_container(self.node), force=True)
        else:
            _vm(self.node).cut_link()

    def _heal(self) -> None:
        if isinstance(self.node, ContainerNode):
            _network(self.node).connect(
                _container(self.node), ipv4_address=str(self.node.spec.address)
            )
        else:
            _vm(self.node).heal_link()


class DiskStall(Fault):
    """Stall the node's I/O to the shared disk; release on exit (VM nodes only)."""

    name = "disk_stall"

    def _check(self) -> None:
        if self.node.kind != "vm":
            raise SpecError(
                "fault.node",
                self.node.spec.name,
                "a disk stall needs a VM node: QEMU holds its requests (containers and SSH "
                "machines reach the disk without the lab in the way)",
            )

    def _inject(self) -> None:
        _vm(self.node).stall_disk()

    def _heal(self) -> None:
        _vm(self.node).unstall_disk()
