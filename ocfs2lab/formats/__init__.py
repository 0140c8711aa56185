"""Pure parsers and renderers: text in, typed values out, and back.

Nothing here starts a process or touches a file: callers pass the text (a file's contents, a
command's stdout, a kernel log line) and get frozen ``attrs`` values, or the reverse. Broken
input raises [`ParseError`][ocfs2lab.errors.ParseError] naming the line and the problem; the kernel
log parser never raises.

Modules:
    cluster_conf: o2cb's ``/etc/ocfs2/cluster.conf``, byte-identical to what o2cb writes.
    o2cb: ``o2cb list-cluster``/``list-nodes``/``list-heartbeats``/``list-clusters`` and
        ``o2cb cluster-status`` output.
    drbd_res: DRBD 8.4 and 9 resource files (render and parse).
    proc_drbd: ``/proc/drbd``.
    drbd_status: ``drbdadm status`` output.
    drbd: the three DRBD modules' names under their old module name.
    kmsg: kernel log lines (o2net, o2hb, o2quo, o2dlm, ocfs2, DRBD, BUG/oops/WARNING) as
        typed events.
"""

from ocfs2lab.formats.cluster_conf import (
    ClusterConf,
    ClusterStanza,
    HeartbeatMode,
    HeartbeatStanza,
    NodeStanza,
    parse_cluster_conf,
    parse_cluster_confs,
    render_cluster_conf,
)
from ocfs2lab.formats.drbd_res import (
    DrbdConnection,
    DrbdHost,
    DrbdResourceConfig,
    DrbdSection,
    DrbdSyntax,
    parse_drbd_res,
    parse_drbd_res_all,
    render_drbd_res,
)
from ocfs2lab.formats.drbd_status import DrbdStatusResource, parse_drbd_status
from ocfs2lab.formats.kmsg import (
    EventKind,
    KernelEvent,
    KmsgAssembler,
    parse_kernel_line,
    parse_kernel_log,
)
from ocfs2lab.formats.o2cb import (
    O2cbStatus,
    parse_cluster_status,
    parse_list_cluster,
    parse_list_clusters,
    parse_list_heartbeats,
    parse_list_nodes,
)
from ocfs2lab.formats.proc_drbd import DrbdProcInfo, parse_proc_drbd

__all__ = [
    "ClusterConf",
    "ClusterStanza",
    "DrbdConnection",
    "DrbdHost",
    "DrbdProcInfo",
    "DrbdResourceConfig",
    "DrbdSection",
    "DrbdStatusResource",
    "DrbdSyntax",
    "EventKind",
    "HeartbeatMode",
    "HeartbeatStanza",
    "KernelEvent",
    "KmsgAssembler",
    "NodeStanza",
    "O2cbStatus",
    "parse_cluster_conf",
    "parse_cluster_confs",
    "parse_cluster_status",
    "parse_drbd_res",
    "parse_drbd_res_all",
    "parse_drbd_status",
    "parse_kernel_line",
    "parse_kernel_log",
    "parse_list_cluster",
    "parse_list_clusters",
    "parse_list_heartbeats",
    "parse_list_nodes",
    "parse_proc_drbd",
    "render_cluster_conf",
    "render_drbd_res",
]
