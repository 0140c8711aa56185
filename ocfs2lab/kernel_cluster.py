"""Deprecated: the SSH and VM clusters live in [`ocfs2lab.clusters`][ocfs2lab.clusters]
(``from ocfs2lab import SshCluster, VmCluster`` is unchanged)."""

from ocfs2lab._deprecated import moved

__getattr__ = moved(
    __name__,
    {
        "SshCluster": "ocfs2lab.clusters.machines",
        "VmCluster": "ocfs2lab.clusters.vms",
        "VM_NETWORK": "ocfs2lab.clusters.vms",
        "VM_TIMING": "ocfs2lab.clusters.vms",
        "RESTORED_COUNTERS": "ocfs2lab.clusters.vms",
        "SHARED_DISK_ID": "ocfs2lab.clusters.vms",
        "SHARED_DISK_SERIAL": "ocfs2lab.clusters.vms",
        "FaultName": "ocfs2lab.experiment.faults",
    },
)
