"""The DRBD formats' names under their module name of before the split, so old imports work.

Each format has a module of its own now, which new code imports from:

- resource files (render and parse): [`ocfs2lab.formats.drbd_res`][ocfs2lab.formats.drbd_res]
  (`DrbdResourceConfig`, `DrbdHost`, `DrbdConnection`, `DrbdSection`, `DrbdSyntax`,
  `render_drbd_res`, `parse_drbd_res`, `parse_drbd_res_all`, `DEFAULT_DRBD_PORT`);
- ``/proc/drbd``: [`ocfs2lab.formats.proc_drbd`][ocfs2lab.formats.proc_drbd]
  (`parse_proc_drbd`, `DrbdProcInfo`, `DrbdProcDevice`, `DrbdCounters`, `DrbdSyncProgress`);
- ``drbdadm status`` output: [`ocfs2lab.formats.drbd_status`][ocfs2lab.formats.drbd_status]
  (`parse_drbd_status`, `DrbdStatusResource`, `DrbdStatusDevice`, `DrbdStatusConnection`,
  `DrbdStatusPeerDevice`).
"""

from ocfs2lab.formats.drbd_res import (
    DEFAULT_DRBD_PORT,
    MAX_MINOR,  # noqa: F401 (importable from here, never in __all__)
    MAX_NODE_ID,  # noqa: F401
    DrbdConnection,
    DrbdHost,
    DrbdResourceConfig,
    DrbdSection,
    DrbdSyntax,
    parse_drbd_res,
    parse_drbd_res_all,
    render_drbd_res,
)
from ocfs2lab.formats.drbd_status import (
    DrbdStatusConnection,
    DrbdStatusDevice,
    DrbdStatusPeerDevice,
    DrbdStatusResource,
    parse_drbd_status,
)
from ocfs2lab.formats.proc_drbd import (
    DrbdCounters,
    DrbdProcDevice,
    DrbdProcInfo,
    DrbdSyncProgress,
    parse_proc_drbd,
)

__all__ = [
    "DEFAULT_DRBD_PORT",
    "DrbdConnection",
    "DrbdCounters",
    "DrbdHost",
    "DrbdProcDevice",
    "DrbdProcInfo",
    "DrbdResourceConfig",
    "DrbdSection",
    "DrbdStatusConnection",
    "DrbdStatusDevice",
    "DrbdStatusPeerDevice",
    "DrbdStatusResource",
    "DrbdSyncProgress",
    "DrbdSyntax",
    "parse_drbd_res",
    "parse_drbd_res_all",
    "parse_drbd_status",
    "parse_proc_drbd",
    "render_drbd_res",
]
