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

* [`DegradedLink`][ocfs2lab.experiment.faults.DegradedLink]: loss, delay with jitter and
  duplicates on the node's link, in its ``wirefilter`` between the node and the switch.
* [`ClockStep`][ocfs2lab.experiment.faults.ClockStep]: the node's wall clock jumps; stepped
  back on exit.

Faults of several nodes: [`Split`][ocfs2lab.experiment.faults.Split] (partitions of any
shape: groups, one link, one way; each node drops its peers' packets in its kernel),
[`Together`][ocfs2lab.experiment.faults.Together] (several victims at once) and
[`Trigger`][ocfs2lab.experiment.faults.Trigger] (a fault fired by a timeline event).

Each fault acts through a capability of its node, a protocol of
[`ocfs2lab.node.base`][ocfs2lab.node.base]: `Killable`, `Freezable`, `LinkControl`, `LinkQuality`,
`ClockControl`, `PacketFilter`, `DiskControl` (and `Power` to revive). A node without it is
refused when the fault is built, before anything is touched: SSH machines have none,
container nodes have no disk control.

On a container node the Docker equivalents run (``docker kill``, ``pause``, ``network
disconnect``). They do not kill a kernel node: containers of one host share one kernel,
which the cluster sees as one OCFS2 node, so no heartbeat dies and no DLM recovery runs.
The events they record say so in their ``note``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Literal, cast

from ocfs2lab.errors import SpecError, WaitTimeout
from ocfs2lab.node.base import (
    ClockControl,
    DiskControl,
    Freezable,
    Killable,
    LinkControl,
    LinkQuality,
    Node,
    PacketFilter,
    capable,
)
from ocfs2lab.observe.events import TimelineEvent
from ocfs2lab.observe.timeline import LabEventKind, Timeline
from ocfs2lab.parallel import run_parallel
from ocfs2lab.spec.link import LinkSpec

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


class ClockStep(Fault):
    """Step the node's wall clock by ``seconds`` (forward or back); step it back on exit.

    Args:
        node: The node.
        timeline: Where it is recorded.
        seconds: How far (negative: back). Between -86400 and 86400, not 0.
    """

    name = "clock_step"
    needs = ClockControl

    def __init__(self, node: Node, timeline: Timeline | None = None, seconds: float = 60.0) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise SpecError("fault.seconds", seconds, "must be a number of seconds")
        if not 0 < abs(seconds) <= 86_400:
            raise SpecError("fault.seconds", seconds, "must be non-zero and within one day")
        super().__init__(node, timeline)
        self.seconds = float(seconds)

    def _data(self) -> dict[str, Any]:
        return {**super()._data(), "seconds": self.seconds}

    def _inject(self) -> None:
        self._node().step_clock(self.seconds)

    def _heal(self) -> None:
        self._node().step_clock(-self.seconds)


class DegradedLink(Fault):
    """Degrade the node's interconnect link, both ways, outside its guest (its
    ``wirefilter``): packet loss, delay with jitter, duplication. Restored on exit.

    Args:
        node: The node.
        timeline: Where it is recorded (with the settings).
        link: What to degrade (a clean link is refused).
    """

    name = "degraded_link"
    needs = LinkQuality

    def __init__(self, node: Node, timeline: Timeline | None = None, *, link: LinkSpec) -> None:
        if link.clean:
            raise SpecError("fault.link", link.to_json(), "must degrade something")
        super().__init__(node, timeline)
        self.link = link

    def _data(self) -> dict[str, Any]:
        return {**super()._data(), **self.link.to_json()}

    def _inject(self) -> None:
        self._node().degrade_link(self.link)

    def _heal(self) -> None:
        self._node().restore_link()


FaultName = Literal["kill", "freeze", "partition", "disk_stall"]
#: Every fault by name (what `cluster.fault(kind, node)` builds).
FAULTS: Mapping[str, type[Fault]] = {
    "kill": Kill,
    "freeze": Freeze,
    "partition": Partition,
    "disk_stall": DiskStall,
}


# -- faults of several nodes -----------------------------------------------------------------


class Split:
    """A partition of any shape: each node drops the interconnect packets of the peers it
    must not hear (in its kernel, on the lab's own iptables chain); all accept again on exit.

    Build one with [`groups`][ocfs2lab.experiment.faults.Split.groups],
    [`between`][ocfs2lab.experiment.faults.Split.between] or
    [`one_way`][ocfs2lab.experiment.faults.Split.one_way]. The timeline gets one
    ``FAULT_INJECTED`` and one ``FAULT_HEALED`` event per affected node, with the shape.

    Args:
        deaf: For each node, the nodes it must not hear.
        shape: The shape in words (on the timeline).
        timeline: Where it is recorded.

    Raises:
        SpecError: A node without [`PacketFilter`][ocfs2lab.node.base.PacketFilter] (VM
            nodes have it), or a node deaf to itself.
    """

    name = "split"

    def __init__(
        self, deaf: Mapping[Node, Sequence[Node]], shape: str, timeline: Timeline | None = None
    ) -> None:
        for node, peers in deaf.items():
            if not capable(node, PacketFilter):
                raise SpecError(
                    "fault.node",
                    node.spec.name,
                    f"a split needs nodes with PacketFilter (drop_from, accept_all); a "
                    f"{node.kind} node has none",
                )
            if node in peers:
                raise SpecError("fault.groups", node.spec.name, "a node cannot be cut from itself")
        self.deaf = {node: list(peers) for node, peers in deaf.items() if peers}
        self.shape = shape
        self.timeline = timeline
        self.injected_at: float | None = None
        self.healed_at: float | None = None

    def __repr__(self) -> str:
        return f"Split({self.shape})"

    @classmethod
    def groups(cls, groups: Sequence[Sequence[Node]], timeline: Timeline | None = None) -> Split:
        """Nodes hear only the nodes of their own group (``[[n1, n2], [n3]]``).

        Raises:
            SpecError: Fewer than two groups, or a node in two groups.
        """
        if len(groups) < 2 or any(not g for g in groups):
            raise SpecError("fault.groups", len(groups), "must be two or more non-empty groups")
        seen = [n for g in groups for n in g]
        if len(seen) != len({id(n) for n in seen}):
            raise SpecError("fault.groups", [n.spec.name for n in seen], "a node is in two groups")
        deaf = {
            n: [m for other in groups if other is not g for m in other] for g in groups for n in g
        }
        shape = " | ".join(",".join(n.spec.name for n in g) for g in groups)
        return cls(deaf, f"groups {shape}", timeline)

    @classmethod
    def between(cls, a: Node, b: Node, timeline: Timeline | None = None) -> Split:
        """Only the link between ``a`` and ``b`` is cut, both ways; both still hear the rest."""
        return cls({a: [b], b: [a]}, f"link {a.spec.name} - {b.spec.name}", timeline)

    @classmethod
    def one_way(cls, source: Node, deaf: Node, timeline: Timeline | None = None) -> Split:
        """``deaf`` stops hearing ``source``; ``source`` still hears ``deaf``."""
        return cls(
            {deaf: [source]}, f"one way: {deaf.spec.name} deaf to {source.spec.name}", timeline
        )

    def _record(self, kind: LabEventKind, when: float, verb: str) -> None:
        if self.timeline is None:
            return
        for node, peers in self.deaf.items():
            self.timeline.record(
                kind,
                f"split {node.spec.name}: {verb} ({self.shape})",
                node=node.spec.name,
                time=when,
                data={
                    "fault": self.name,
                    "shape": self.shape,
                    "deaf_to": [p.spec.name for p in peers],
                    "node_kind": node.kind,
                },
            )

    def inject(self) -> float:
        """Make every node drop its peers' packets; returns the host time it took effect."""
        # Every node at once: each is a command in its guest (about a second under TCG).
        outcome = run_parallel(
            list(self.deaf.items()),
            lambda item: cast(PacketFilter, item[0]).drop_from(
                [str(p.spec.address) for p in item[1]]
            ),
        )
        when = self.timeline.now() if self.timeline is not None else _now()
        if outcome.failed:
            self.injected_at = when
            self.heal()
            outcome.raise_failures("split", lambda item: item[0].spec.name)
        self.injected_at = when
        self._record(LabEventKind.FAULT_INJECTED, when, "injected")
        return when

    def heal(self) -> float | None:
        """Accept everything again on every node still running (idempotent)."""
        if self.injected_at is None or self.healed_at is not None:
            return self.healed_at
        running = [cast(PacketFilter, n) for n in self.deaf if cast(PacketFilter, n).running]
        run_parallel(running, lambda node: node.accept_all()).raise_failures(
            "heal the split", lambda node: cast(Node, node).spec.name
        )
        when = self.timeline.now() if self.timeline is not None else _now()
        self.healed_at = when
        self._record(LabEventKind.FAULT_HEALED, when, "healed")
        return when

    def __enter__(self) -> Split:
        self.inject()
        return self

    def __exit__(self, *exc: object) -> None:
        self.heal()


class Together:
    """Several faults at once (several victims): injected together, each from its own
    thread so that they take effect within a moment of each other, healed together."""

    name = "together"

    def __init__(self, faults: Sequence[Fault | Split]) -> None:
        if not faults:
            raise SpecError("faults", [], "must name at least one fault")
        self.faults = list(faults)
        self.injected_at: float | None = None

    def __repr__(self) -> str:
        return f"Together({', '.join(repr(f) for f in self.faults)})"

    def __enter__(self) -> Together:
        threads = [threading.Thread(target=f.inject) for f in self.faults]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        missing = [f for f in self.faults if f.injected_at is None]
        if missing:
            self.__exit__()
            raise SpecError("faults", repr(missing), "could not be injected")
        self.injected_at = min(f.injected_at for f in self.faults if f.injected_at is not None)
        return self

    def __exit__(self, *exc: object) -> None:
        for fault in reversed(self.faults):
            fault.heal()


class Trigger:
    """A fault that fires when the timeline shows an event: cascading faults.

    ``with Trigger(cluster.timeline, Expect(EventKind.RECOVERY_MASTER), lambda e:
    cluster.kill(e.node)):`` kills whichever survivor says it is the recovery master, the
    moment it says so (recovery during recovery). The fault is built by ``make`` from the
    event, injected at once, and healed when the block ends (a kill stays).

    Args:
        timeline: Where to watch.
        step: The event to wait for (a kind or an
            [`Expect`][ocfs2lab.observe.timeline.Expect]).
        make: Builds the fault from the event.
        after: Only events at or after this host time (default: when the block starts).

    Attributes:
        event: The event that fired it (``None`` until then).
        fault: The fault it injected.
        error: What went wrong building or injecting the fault.
    """

    def __init__(
        self,
        timeline: Timeline,
        step: Any,
        make: Callable[[TimelineEvent], Fault | Split | Together],
        *,
        after: float | None = None,
    ) -> None:
        self.timeline = timeline
        self.step = step
        self.make = make
        self.after = after
        self.event: TimelineEvent | None = None
        self.fault: Fault | Split | Together | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def fired(self) -> bool:
        """The event came and the fault was injected."""
        return self.fault is not None and self.fault.injected_at is not None

    def __enter__(self) -> Trigger:
        since = self.timeline.now() if self.after is None else self.after
        self._thread = threading.Thread(target=self._watch, args=(since,), daemon=True)
        self._thread.start()
        return self

    def _watch(self, since: float) -> None:
        while not self._stop.is_set():
            try:
                (event,) = self.timeline.expect(self.step, timeout=1.0, after=since, forbid=())
            except WaitTimeout:
                continue
            self.event = event
            try:
                fault = self.make(event)
                self.timeline.record(
                    LabEventKind.NOTE,
                    f"trigger: {event.text[:80]!r} on {event.node}: {fault!r}",
                    node=event.node,
                    data={"trigger": str(getattr(self.step, "kind", self.step))},
                )
                self.fault = fault
                fault.__enter__()
            except Exception as err:  # reported through `error`, not lost in a thread
                self.error = err
                log.exception("trigger on %s failed", event.node)
            return

    def wait(self, timeout: float) -> bool:
        """Wait until the trigger has fired (or failed); returns whether it fired."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.fired

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
        if self.fault is not None:
            self.fault.__exit__(None, None, None)
