"""Hosts: the machines a lab runs on (this machine, one reached over SSH, the lab VM), and
what the lab makes on them (the DRBD resource, the ledger of what a lab created, and the
changes a cluster stack makes on a machine, recorded in that ledger before they are made).

Above `vm` (the lab VM is a QEMU machine), below `node` and the clusters.
"""

from ocfs2lab.host.base import Host, Machine, Shell
from ocfs2lab.host.changes import MachineChanges, undo_entry
from ocfs2lab.host.drbd import DrbdResource
from ocfs2lab.host.labvm import LabVm
from ocfs2lab.host.local import LocalHost
from ocfs2lab.host.ssh import SshHost
from ocfs2lab.host.state import Ledger, new_lab_id

__all__ = [
    "DrbdResource",
    "Host",
    "LabVm",
    "Ledger",
    "LocalHost",
    "Machine",
    "MachineChanges",
    "Shell",
    "SshHost",
    "new_lab_id",
    "undo_entry",
]
