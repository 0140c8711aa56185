"""ocfs2lab: build OCFS2 cluster labs and run failure experiments on them.

The public API is what ``__all__`` lists; everything else may change.

Specs (frozen, validated) say what to build; handles (context managers) are what was built:
``with Cluster(host, nodes=3) as c:`` builds the seed's deployment and undoes it on exit.
"""

from ocfs2lab.cleanup import Census, census, cleanup
from ocfs2lab.clusters import Cluster, ClusterStatus, SshCluster, VmCluster
from ocfs2lab.coverage import Coverage, CoverageError, CoverageReport, GcovTree
from ocfs2lab.doctor import Check, DoctorReport, diagnose
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
from ocfs2lab.experiment import (
    DiskStall,
    Fault,
    Freeze,
    Kill,
    Partition,
    RecoveryExperiment,
    RecoveryReport,
    RecoverySeries,
    RecoveryTimes,
)
from ocfs2lab.experiment.compare import Comparison, FigureComparison
from ocfs2lab.fs.heartbeat import HeartbeatRegion
from ocfs2lab.fs.o2cb import O2cbCluster
from ocfs2lab.fs.volume import FsckReport, OcfsVolume
from ocfs2lab.fs.workload import SharedIoWorkload, WorkloadReport
from ocfs2lab.host.base import Host, Machine, Shell
from ocfs2lab.host.drbd import DrbdResource
from ocfs2lab.host.labvm import LabVm
from ocfs2lab.host.local import LocalHost
from ocfs2lab.host.ssh import SshHost
from ocfs2lab.host.state import Ledger, new_lab_id
from ocfs2lab.kernel_ab import compare_kernels
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.node.background import RemoteProcess
from ocfs2lab.node.base import Node
from ocfs2lab.node.container import ContainerNode, ContainerSettings, DockerNetwork
from ocfs2lab.node.ssh import SshNode
from ocfs2lab.node.vm import VmNode
from ocfs2lab.observe import (
    EventKind,
    Expect,
    ExpectTimeout,
    ForbiddenEvent,
    KernelErrorsFound,
    LabEventKind,
    LostWrites,
    Timeline,
    TimelineError,
    WriteRecorder,
)
from ocfs2lab.report import LogReporter, Reporter, show_progress
from ocfs2lab.runner.base import CommandResult, Runner
from ocfs2lab.runner.docker import DockerExecRunner
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.runner.process import Spawned, spawn
from ocfs2lab.runner.ssh import SshRunner, SshTarget
from ocfs2lab.spec.cluster import ClusterSpec, NetworkSpec, NodeSpec, TimingSpec
from ocfs2lab.spec.storage import DrbdSpec, HeartbeatSpec, VolumeSpec
from ocfs2lab.vm import (
    ImageBuildError,
    ImageRecipe,
    KernelBuild,
    KernelBuildError,
    KernelRecipe,
    LabImage,
    QemuMachine,
    QemuSpec,
    QmpCommandError,
    SavedStateError,
    build_image,
    build_kernel,
)
from ocfs2lab.vm.switch import VdeSwitch

__all__ = [
    "Census",
    "Check",
    "Cluster",
    "ClusterSpec",
    "ClusterStatus",
    "CommandError",
    "CommandFailed",
    "CommandResult",
    "CommandTimeout",
    "Comparison",
    "ContainerNode",
    "ContainerSettings",
    "Coverage",
    "CoverageError",
    "CoverageReport",
    "DiskStall",
    "DockerExecRunner",
    "DockerNetwork",
    "DoctorReport",
    "DrbdResource",
    "DrbdSpec",
    "EventKind",
    "Expect",
    "ExpectTimeout",
    "Fault",
    "FigureComparison",
    "ForbiddenEvent",
    "Freeze",
    "FsckReport",
    "GcovTree",
    "HeartbeatRegion",
    "HeartbeatSpec",
    "Host",
    "HostError",
    "ImageBuildError",
    "ImageRecipe",
    "KernelBuild",
    "KernelBuildError",
    "KernelErrorsFound",
    "KernelRecipe",
    "Kill",
    "LabEventKind",
    "LabImage",
    "LabVm",
    "Ledger",
    "Lifecycle",
    "LifecycleError",
    "LocalHost",
    "LocalRunner",
    "LogReporter",
    "LostWrites",
    "Machine",
    "NetworkSpec",
    "Node",
    "NodeSpec",
    "O2cbCluster",
    "Ocfs2LabError",
    "OcfsVolume",
    "OwnershipError",
    "ParseError",
    "Partition",
    "QemuMachine",
    "QemuSpec",
    "QmpCommandError",
    "RecoveryExperiment",
    "RecoveryReport",
    "RecoverySeries",
    "RecoveryTimes",
    "RemoteProcess",
    "Reporter",
    "Runner",
    "SavedStateError",
    "SharedIoWorkload",
    "Shell",
    "Spawned",
    "SpecError",
    "SshCluster",
    "SshHost",
    "SshNode",
    "SshRunner",
    "SshTarget",
    "Timeline",
    "TimelineError",
    "TimingSpec",
    "TransportError",
    "VdeSwitch",
    "VmCluster",
    "VmNode",
    "VolumeSpec",
    "WaitTimeout",
    "WorkloadReport",
    "WriteRecorder",
    "build_image",
    "build_kernel",
    "census",
    "cleanup",
    "compare_kernels",
    "diagnose",
    "new_lab_id",
    "show_progress",
    "spawn",
]
