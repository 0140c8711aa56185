"""Deprecated: the container cluster lives in
[`ocfs2lab.clusters.containers`][ocfs2lab.clusters.containers] (``from ocfs2lab import
Cluster`` is unchanged)."""

from ocfs2lab._deprecated import moved

__getattr__ = moved(
    __name__,
    {
        "Cluster": "ocfs2lab.clusters.containers",
        "HOST_MODULES": "ocfs2lab.clusters.containers",
        "ONE_KERNEL_NOTE": "ocfs2lab.clusters.containers",
        "ClusterStatus": "ocfs2lab.clusters.base",
    },
)
