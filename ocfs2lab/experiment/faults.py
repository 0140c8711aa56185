"""Faults as restoring context managers that record themselves on the timeline.

``with cluster.freeze(node):`` freezes the node on entry and thaws it on exit, whatever
happens in the block; the timeline gets a ``FAULT_INJECTED`` event the moment the fault
took effect and a ``FAULT_HEALED`` event when it was lifted.

On a VM node (one kernel):

* [`Kill`][ocfs2lab.experiment.faults.Kill]: SIGKILL of the QEMU process, a hard power-off. Nothing
  is restored on exit: the node stays down until revived
  ([`revive`][ocfs2lab.clusters.base.LabCluster.revive]).
* [`Freeze`][ocfs2lab.experiment.faults.Freeze]: QMP ``stop``; ``cont`` on exit.
* [`Partition`][ocfs2lab.experiment.faults.Partition]: QMP ``set_link`` of the interconnect NIC off;
  on on exit. The node's ssh NIC and its serial console stay up, so the lab keeps seeing it.
* [`DiskStall`][ocfs2lab.experiment.faults.DiskStall]: QMP block throttling of the shared disk to
  one byte per second; lifted on exit. The guest sees requests that never complete and cannot go
  around them.

Each fault acts through a capability of its node, a protocol of
[`ocfs2lab.node.base`][ocfs2lab.node.base]: `Killable`, `Freezable`, `LinkControl`,
`DiskControl` (and `Power` to revive). A node without it is refused when the fault is built,
before anything is touched: SSH machines have none, container nodes have no disk control.

On a container node the Docker equivalents run (``docker kill``, ``pause``, ``network
disconnect``). They do not kill a kernel node: containers of one host share one kernel,
which the cluster sees as one OCFS2 node, so no heartbeat dies and no DLM recovery runs.
The events they record say so in their ``note``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar, Literal

from ocfs2lab.errors import SpecError
from ocfs2lab.node.base import (
    DiskControl,
    Freezable,
    Killable,
    LinkControl,
    Node,
    capable,
)
from ocfs2lab.observe.timeline import LabEventKind, Timeline

log = logging.getLogger(__name__)

CONTAINER_NOTE = (
    "container nodes share one kernel: this fault does not kill an OCFS2 node (no heartbeat "
    "death, no DLM recovery); use VM nodes for that"
)
#: Why a kind of node lacks a capability (the refusal's second half).
WHY_NOT = {
    "ssh": "the lab has no power, CPU, link or disk control over SSH machines",
    "container": "containers reach the shared disk directly, without QEMU in the way",
}


class Fault:
    """Base of the faults: inject on enter, restore on exit, both on the timeline.

    A fault needs a capability of its node (`needs`,
    a protocol of [`ocfs2lab.node.base`][ocfs2lab.node.base]); a node without it is refused
    when the fault is built, before anything is touched.

    Args:
        node: The node to fault.
        timeline: Where the fault's start and end are recorded (none: not recorded).

    Attributes:
        injected_at: Host time the fault took effect.
        healed_at: Host time it was lifted (``None`` while active, and for a kill).

    Raises:
        SpecError: The node lacks the capability (``field`` is ``fault.node``).
    """

    #: The fault's name on the timeline (``data["fault"]``).
    name: ClassVar[str] = "fault"
    #: The capability (a node protocol) the fault acts through.
    needs: ClassVar[type] = Killable

    def __init__(self, node: Node, timeline: Timeline | None = None) -> None:
        if not capable(node, self.needs):
            members = ", ".join(
                n for n in vars(self.needs) if not n.startswith("_") and n != "running"
            )
            why = WHY_NOT.get(node.kind, "")
            raise SpecError(
                "fault.node",
                node.spec.name,
                f"a {self.name} fault needs a node with {self.needs.__name__} ({members}); "
                f"a {node.kind} node has none" + (f": {why}" if why else ""),
            )
        self.node = node
        self.timeline = timeline
        self.injected_at: float | None = None
        self.healed_at: float | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.node.spec.name})"

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
        if self._node().running:
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

    def _node(self) -> Any:
        """The node, as the capability the fault checked for."""
        return self.node

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


class Kill(Fault):
    """Hard power-off: the node's kernel dies at once. Not undone on exit (revive it)."""

    name = "kill"
    needs = Killable

    def _inject(self) -> None:
        self._node().kill()

    def _heal_possible(self) -> bool:
        return False


class Freeze(Fault):
    """Freeze the node (its CPUs stop); thaw on exit."""

    name = "freeze"
    needs = Freezable

    def _inject(self) -> None:
        self._node().freeze()

    def _heal(self) -> None:
        self._node().thaw()


class Partition(Fault):
    """Cut the node's interconnect; heal on exit."""

    name = "partition"
    needs = LinkControl

    def _inject(self) -> None:
        self._node().cut_link()

    def _heal(self) -> None:
        self._node().heal_link()


class DiskStall(Fault):
    """Stall the node's I/O to the shared disk; release on exit (VM nodes only)."""

    name = "disk_stall"
    needs = DiskControl

    def _inject(self) -> None:
        self._node().stall_disk()

    def _heal(self) -> None:
        self._node().unstall_disk()


FaultName = Literal["kill", "freeze", "partition", "disk_stall"]
#: Every fault by name (what `cluster.fault(kind, node)` builds).
FAULTS: Mapping[str, type[Fault]] = {
    "kill": Kill,
    "freeze": Freeze,
    "partition": Partition,
    "disk_stall": DiskStall,
}
