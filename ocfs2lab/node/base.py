"""The Node protocol: one member of an o2cb cluster, whatever it runs on.

``O2cbCluster`` and ``OcfsVolume`` talk to nodes only through this protocol, so they run
unchanged on container nodes (one shared kernel), VM nodes (one kernel each) and SSH nodes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Protocol, runtime_checkable

from ocfs2lab.runner.base import DEFAULT_TIMEOUT, CommandResult, Runner
from ocfs2lab.spec.cluster import NodeSpec

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
