"""SSH nodes: existing Linux machines, one kernel each, sharing a block device.

What users have when they outgrow one machine: libvirt or cloud VMs with a multi-attach
disk, iSCSI LUNs. Each machine is one OCFS2 node (its own kernel). The lab reaches it over
one multiplexed SSH connection; its kernel log reaches the timeline through a
[`DmesgPoller`][ocfs2lab.observe.sources.DmesgPoller]; its writer reports to the lab's recorder
through a reverse port forward over the same connection.
"""

from __future__ import annotations

import logging

from ocfs2lab.errors import HostError, Ocfs2LabError, TransportError
from ocfs2lab.formats.iproute import holder_of, parse_addresses
from ocfs2lab.host.base import Machine
from ocfs2lab.node.base import NodeKind
from ocfs2lab.observe.recorder import Listener
from ocfs2lab.runner.ssh import SshRunner, SshTarget
from ocfs2lab.spec.cluster import NetworkSpec, NodeSpec

log = logging.getLogger(__name__)


class SshNode(Machine):
    """A Linux machine reached over SSH, used as one OCFS2 node.

    The machine must have ocfs2-tools, the OCFS2 and o2cb kernel modules, its interconnect
    address (``spec.address``) on some interface, a hostname equal to ``spec.name`` (o2cb
    marks the local node by hostname) and the shared device at the same path as the other
    nodes (use a stable name: ``/dev/disk/by-id/...``).

    Args:
        spec: Name, o2cb number, interconnect address.
        target: How to reach it.
        runner: An existing runner for it (one is made from ``target`` otherwise).
    """

    def __init__(
        self,
        spec: NodeSpec,
        target: SshTarget | None = None,
        *,
        runner: SshRunner | None = None,
    ) -> None:
        if runner is None:
            if target is None:
                raise HostError(f"{spec.name}: an SshNode needs a target or a runner")
            runner = SshRunner(target)
        self._spec = spec
        self._ssh: SshRunner | None = runner
        Machine.__init__(self, runner, spec.name)

    @property
    def spec(self) -> NodeSpec:
        """Name, number and address."""
        return self._spec

    @property
    def kind(self) -> NodeKind:
        """``"ssh"``."""
        return "ssh"

    @property
    def ssh(self) -> SshRunner:
        """The node's SSH connection.

        Raises:
            TransportError: The node has none yet (a VM node before its boot).
        """
        if self._ssh is None:
            raise TransportError(f"{self._spec.name}: no SSH connection yet", hint="boot it")
        return self._ssh

    @property
    def target(self) -> SshTarget:
        """How the node is reached."""
        return self.ssh.target

    def describe(self) -> str:
        """Name for messages."""
        return self._spec.name

    def reconnect(self, target: SshTarget | None = None) -> None:
        """Reach the node through a new SSH connection (after the machine rebooted, its old
        connection is dead), at ``target`` when its address changed.

        Raises:
            TransportError: The machine does not answer.
        """
        old = self._ssh
        self._use_runner(SshRunner(target or self.target))
        if old is not None:
            try:
                old.close()
            except Ocfs2LabError as err:
                log.debug("%s: closing the old connection: %s", self._spec.name, err)
        self.ssh.connect()

    def _use_runner(self, runner: SshRunner) -> None:
        """Reach the node through another connection (a VM node after a new boot)."""
        self._ssh = runner
        self._runner = runner

    # -- state -----------------------------------------------------------------------------
    @property
    def up(self) -> bool:
        """True when the node answers a command now."""
        try:
            return self.run(["true"], check=False, timeout=20).ok
        except Ocfs2LabError:
            return False

    def check_interconnect(self, network: NetworkSpec | None = None) -> str:
        """Check that the machine has its interconnect address; returns the interface.

        Args:
            network: When given, the address must also lie in its subnet.

        Raises:
            HostError: No interface has ``spec.address``.
        """
        res = self.run(["ip", "-j", "-4", "addr"], timeout=30)
        owner = holder_of(parse_addresses(res.stdout), self._spec.address)
        if owner is None:
            raise HostError(
                f"{self._spec.name}: no interface has the interconnect address "
                f"{self._spec.address}",
                hint="configure it on the machine, or give the node the address it has",
            )
        if network is not None and self._spec.address not in network.subnet:
            raise HostError(f"{self._spec.name}: {self._spec.address} is outside {network.subnet}")
        return owner

    # -- observation -----------------------------------------------------------------------
    def recorder_address(self, recorder: Listener) -> str:
        """The address at which a writer on this node reaches ``recorder``.

        A reverse forward of a port on the node's loopback to the recorder, over the node's
        SSH connection.

        Raises:
            TransportError: The forward was refused.
        """
        port = self.ssh.reverse_forward(recorder.port)
        return f"127.0.0.1:{port}"
