"""The file system layer: the cluster stacks (o2cb; pcmk: corosync, dlm_controld and fs/dlm),
the heartbeat region, the OCFS2 volume and the seed's I/O test, on any nodes.

They talk to nodes only through the [`Node`][ocfs2lab.node.base.Node] protocol, so they run
unchanged on containers, VMs and SSH machines. Above `node`, below `experiment` and the
clusters (which run them in one pipeline).
"""

from ocfs2lab.fs.heartbeat import HeartbeatRegion
from ocfs2lab.fs.o2cb import O2cbCluster
from ocfs2lab.fs.pcmk import PcmkCluster
from ocfs2lab.fs.stack import ClusterStack
from ocfs2lab.fs.volume import FsckReport, OcfsVolume
from ocfs2lab.fs.workload import SharedIoWorkload, WorkloadReport

__all__ = [
    "ClusterStack",
    "FsckReport",
    "HeartbeatRegion",
    "O2cbCluster",
    "OcfsVolume",
    "PcmkCluster",
    "SharedIoWorkload",
    "WorkloadReport",
]
