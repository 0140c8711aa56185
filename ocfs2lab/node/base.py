"""The Node protocol: one member of an o2cb cluster, whatever it runs on.

``O2cbCluster`` and ``OcfsVolume`` talk to nodes only through this protocol, so they run
unchanged on container nodes (one shared kernel), VM nodes (one kernel each) and SSH nodes.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol, runtime_checkable

from ocfs2lab.runner.base import DEFAULT_TIMEOUT, CommandResult, Runner
from ocfs2lab.spec.cluster import NodeSpec
from ocfs2lab.spec.link import LinkSpec

NodeKind = Literal["container", "vm", "ssh"]


@runtime_checkable
class Node(Protocol):
    """A cluster node: a name, a number, an address, and a way to run commands.

    Implementations: [`ContainerNode`][ocfs2lab.node.container.ContainerNode] (shares the host's
    kernel: every container of a host is the same OCFS2 node as far as the kernel knows),
    and the VM and SSH nodes (one kernel each).
    """

    @property
    def spec(self) -> NodeSpec:
        """The node's name, o2cb number and interconnect address."""
        ...

    @property
    def kind(self) -> NodeKind:
        """``"container"``, ``"vm"`` or ``"ssh"``."""
        ...

    @property
    def up(self) -> bool:
        """False when the node is known to be down (killed, fenced, powered off, frozen):
        teardown skips what died with its kernel there."""
        ...

    @property
    def runner(self) -> Runner:
        """The runner that reaches the node."""
        ...

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        input: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run a command on the node."""
        ...

    def put_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        """Write a file on the node."""
        ...

    def get_file(self, path: str) -> bytes:
        """Read a file from the node."""
        ...

    def boot_id(self) -> str:
        """The kernel's boot id: nodes with the same boot id share one kernel."""
        ...


# -- capabilities --------------------------------------------------------------------------
# What the lab can do to a node besides running commands on it. A fault asks for the
# capability it needs (`capable`); a node without it is refused when the fault is built.
# VM nodes have all of them; container nodes Docker's (kill, freeze, link); SSH nodes none.


@runtime_checkable
class Killable(Protocol):
    """A node the lab can power off at once (its kernel, or its container, dies)."""

    @property
    def running(self) -> bool:
        """False once the node is powered off (killed, fenced, or it fenced itself)."""
        ...

    def kill(self) -> None:
        """Power the node off now, without any shutdown."""
        ...


@runtime_checkable
class Power(Killable, Protocol):
    """A node the lab can power off and on again: its kernel dies, and a new one boots."""

    def revive(self) -> None:
        """Start the node again after a kill or a fence (a new kernel)."""
        ...


@runtime_checkable
class Freezable(Protocol):
    """A node whose CPUs the lab can stop and start again."""

    @property
    def running(self) -> bool:
        """False once the node is powered off."""
        ...

    def freeze(self) -> None:
        """Stop the node's CPUs (its kernel sees no time pass)."""
        ...

    def thaw(self) -> None:
        """Let the node's CPUs run again."""
        ...


@runtime_checkable
class LinkControl(Protocol):
    """A node whose interconnect link the lab can cut and heal from outside the node."""

    @property
    def running(self) -> bool:
        """False once the node is powered off."""
        ...

    def cut_link(self) -> None:
        """Take the node's interconnect link down."""
        ...

    def heal_link(self) -> None:
        """Bring the node's interconnect link back."""
        ...


@runtime_checkable
class DiskControl(Protocol):
    """A node whose I/O to the shared disk passes through the lab (QEMU's block layer)."""

    @property
    def running(self) -> bool:
        """False once the node is powered off."""
        ...

    def stall_disk(self) -> None:
        """Hold every request of the node to the shared disk."""
        ...

    def unstall_disk(self) -> None:
        """Let the node's requests to the shared disk complete again."""
        ...


@runtime_checkable
class ClockControl(Protocol):
    """A node whose wall clock the lab may step."""

    @property
    def running(self) -> bool:
        """False once the node is powered off."""
        ...

    def step_clock(self, seconds: float) -> None:
        """Move the node's wall clock by ``seconds`` (forward or back) at once."""
        ...


@runtime_checkable
class LinkQuality(Protocol):
    """A node whose interconnect link the lab degrades from outside the node (loss, delay,
    jitter, duplication)."""

    @property
    def running(self) -> bool:
        """False once the node is powered off."""
        ...

    def degrade_link(self, link: LinkSpec) -> None:
        """Impair the node's link, both ways."""
        ...

    def restore_link(self) -> None:
        """No impairment any more."""
        ...


@runtime_checkable
class PacketFilter(Protocol):
    """A node whose kernel the lab may tell to drop interconnect packets from some peers
    (a partition of any shape: groups, one link, one way)."""

    @property
    def running(self) -> bool:
        """False once the node is powered off."""
        ...

    def drop_from(self, addresses: Sequence[str]) -> None:
        """Drop every packet that arrives from ``addresses`` (replacing earlier drops)."""
        ...

    def accept_all(self) -> None:
        """Drop nothing any more."""
        ...


def capable(node: object, capability: type) -> bool:
    """Whether ``node`` has every member of the ``capability`` protocol.

    Looked up statically: unlike ``isinstance`` on a runtime protocol, no property of the
    node runs (a ``running`` check may cost a round trip to the node).
    """
    names = {
        name
        for klass in capability.__mro__
        if klass not in (Protocol, object) and getattr(klass, "_is_protocol", False)
        for name in vars(klass)
        if not name.startswith("_")
    }
    return all(inspect.getattr_static(node, name, None) is not None for name in names)
