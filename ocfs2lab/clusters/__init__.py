"""The clusters: provisioners that bring nodes and a shared device, and the one pipeline.

Every cluster is a [`LabCluster`][ocfs2lab.clusters.base.LabCluster]: a provisioner brings
the nodes and the shared device, then one pipeline deploys the o2cb stack, the heartbeat and
the volume on them, whatever the topology. Three provisioners:

* [`Cluster`][ocfs2lab.clusters.containers.Cluster] (also `ContainerCluster`): the seed's
  privileged containers on one host, with a DRBD device (one kernel for every node);
* [`SshCluster`][ocfs2lab.clusters.machines.SshCluster]: machines that exist, one kernel each;
* [`VmCluster`][ocfs2lab.clusters.vms.VmCluster]: QEMU machines the lab starts, one kernel
  each, with every fault capability.

This layer sits above `experiment` (it builds the faults) and below the facades (`cli`,
`demo`, `kernel_ab`, the pytest plugin).
"""

from ocfs2lab.clusters.base import ClusterStatus, LabCluster
from ocfs2lab.clusters.containers import HOST_MODULES, ONE_KERNEL_NOTE, Cluster, ContainerCluster
from ocfs2lab.clusters.machines import SshCluster, check_machines
from ocfs2lab.clusters.vms import (
    RESTORED_COUNTERS,
    SHARED_DEVICE,
    SHARED_DISK_ID,
    SHARED_DISK_SERIAL,
    VM_NETWORK,
    VM_TIMING,
    VmCluster,
    VmMachines,
    VmSettings,
)
from ocfs2lab.experiment.faults import FAULTS, FaultName

__all__ = [
    "FAULTS",
    "HOST_MODULES",
    "ONE_KERNEL_NOTE",
    "RESTORED_COUNTERS",
    "SHARED_DEVICE",
    "SHARED_DISK_ID",
    "SHARED_DISK_SERIAL",
    "VM_NETWORK",
    "VM_TIMING",
    "Cluster",
    "ClusterStatus",
    "ContainerCluster",
    "FaultName",
    "LabCluster",
    "SshCluster",
    "VmCluster",
    "VmMachines",
    "VmSettings",
    "check_machines",
]
