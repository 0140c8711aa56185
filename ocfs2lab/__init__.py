"""ocfs2lab: build OCFS2 cluster labs and run failure experiments on them.

The public API is what ``__all__`` lists; everything else may change.
"""

from ocfs2lab.errors import (
    CommandError,
    CommandFailed,
    CommandTimeout,
    HostError,
    LifecycleError,
    Ocfs2LabError,
    OwnershipError,
    ParseError,
    SpecError,
    TransportError,
    WaitTimeout,
)
from ocfs2lab.host.base import Host
from ocfs2lab.host.local import LocalHost
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.report import LogReporter, Reporter
from ocfs2lab.runner.base import CommandResult, Runner
from ocfs2lab.spec.cluster import ClusterSpec, NetworkSpec, NodeSpec, TimingSpec
from ocfs2lab.spec.storage import DrbdSpec, HeartbeatSpec, VolumeSpec

__all__ = [
    "ClusterSpec",
    "CommandError",
    "CommandFailed",
    "CommandResult",
    "CommandTimeout",
    "DrbdSpec",
    "HeartbeatSpec",
    "Host",
    "HostError",
    "LifecycleError",
    "Lifecycle",
    "LocalHost",
    "LogReporter",
    "NetworkSpec",
    "NodeSpec",
    "Ocfs2LabError",
    "OwnershipError",
    "ParseError",
    "Reporter",
    "Runner",
    "SpecError",
    "TimingSpec",
    "TransportError",
    "VolumeSpec",
    "WaitTimeout",
]
