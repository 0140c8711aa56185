"""Nodes: the members of a cluster (privileged containers, QEMU machines, SSH machines) and
their capabilities.

Every node runs commands ([`Node`][ocfs2lab.node.base.Node]). What else the lab can do to it
is a capability, a protocol a fault asks for: [`Killable`][ocfs2lab.node.base.Killable] and
[`Power`][ocfs2lab.node.base.Power] (kill, revive), [`Freezable`][ocfs2lab.node.base.Freezable],
[`LinkControl`][ocfs2lab.node.base.LinkControl], [`DiskControl`][ocfs2lab.node.base.DiskControl].
VM nodes have all of them, container nodes Docker's (kill, freeze, link), SSH nodes none.

Above `host` and `vm`, below `fs`.
"""

from ocfs2lab.node.background import RemoteProcess
from ocfs2lab.node.base import (
    DiskControl,
    Freezable,
    Killable,
    LinkControl,
    Node,
    Power,
    capable,
)
from ocfs2lab.node.container import ContainerNode, ContainerSettings, DockerNetwork
from ocfs2lab.node.ssh import SshNode
from ocfs2lab.node.vm import VmNode

__all__ = [
    "ContainerNode",
    "ContainerSettings",
    "DiskControl",
    "DockerNetwork",
    "Freezable",
    "Killable",
    "LinkControl",
    "Node",
    "Power",
    "RemoteProcess",
    "SshNode",
    "VmNode",
    "capable",
]
