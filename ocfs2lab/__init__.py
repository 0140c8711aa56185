"""ocfs2lab: build OCFS2 cluster labs and run failure experiments on them.

The root exports what a script or a notebook needs (``__all__``): the clusters and their
specs, the object model of the seed's deployment (`Host`, `DrbdResource`, `O2cbCluster`,
`Node`, `HeartbeatRegion`, `OcfsVolume`), the lab VM and SSH machines, image and kernel
recipes, recovery experiments and comparisons of kernels and of cluster stacks, the faults,
the timeline, the main errors, the doctor, and the census and cleanup of what labs left on a
host. Everything else lives in its layer's package, each with its own ``__all__``:
`ocfs2lab.clusters`, `ocfs2lab.experiment`, `ocfs2lab.observe`, `ocfs2lab.fs`,
`ocfs2lab.node`, `ocfs2lab.host`, `ocfs2lab.vm`, `ocfs2lab.coverage`, `ocfs2lab.runner`,
`ocfs2lab.spec`, `ocfs2lab.formats`, and every exception in `ocfs2lab.errors`. Names not
listed there may change.

Specs (frozen, validated) say what to build; handles (context managers) are what was built:
``with Cluster(host, nodes=3) as c:`` builds the seed's deployment and undoes it on exit.
Outside a ``with`` block (a notebook), ``c = VmCluster(3).start()`` and ``c.close()``.
"""

from importlib.metadata import PackageNotFoundError, version

from ocfs2lab._deprecated import moved
from ocfs2lab.cleanup import census, cleanup
from ocfs2lab.clusters import Cluster, SshCluster, VmCluster
from ocfs2lab.doctor import diagnose
from ocfs2lab.errors import LifecycleError, Ocfs2LabError, SpecError
from ocfs2lab.experiment import (
    DiskStall,
    Freeze,
    Kill,
    Partition,
    RecoveryExperiment,
)
from ocfs2lab.fs import HeartbeatRegion, O2cbCluster, OcfsVolume
from ocfs2lab.host import DrbdResource, Host, LabVm, SshHost
from ocfs2lab.kernel_ab import compare_kernels, compare_stacks
from ocfs2lab.node import Node, SshNode
from ocfs2lab.observe import EventKind, LabEventKind, Timeline
from ocfs2lab.report import show_progress
from ocfs2lab.runner import SshTarget
from ocfs2lab.spec import ClusterSpec, DrbdSpec, NodeSpec, PcmkSpec, TimingSpec, VolumeSpec
from ocfs2lab.vm import ImageRecipe, KernelRecipe

try:
    __version__ = version("ocfs2lab")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Cluster",
    "ClusterSpec",
    "DiskStall",
    "DrbdResource",
    "DrbdSpec",
    "EventKind",
    "Freeze",
    "HeartbeatRegion",
    "Host",
    "ImageRecipe",
    "KernelRecipe",
    "Kill",
    "LabEventKind",
    "LabVm",
    "LifecycleError",
    "Node",
    "NodeSpec",
    "O2cbCluster",
    "Ocfs2LabError",
    "OcfsVolume",
    "Partition",
    "PcmkSpec",
    "RecoveryExperiment",
    "SpecError",
    "SshCluster",
    "SshHost",
    "SshNode",
    "SshTarget",
    "Timeline",
    "TimingSpec",
    "VmCluster",
    "VolumeSpec",
    "census",
    "cleanup",
    "compare_kernels",
    "compare_stacks",
    "diagnose",
    "show_progress",
]

# The names the root exported before the tiers: they keep working for this release, with a
# deprecation warning that says where each lives now.
__getattr__ = moved(
    __name__,
    {
        "Census": "ocfs2lab.cleanup",
        "ClusterStatus": "ocfs2lab.clusters",
        "Coverage": "ocfs2lab.coverage",
        "CoverageReport": "ocfs2lab.coverage",
        "GcovTree": "ocfs2lab.coverage",
        "Check": "ocfs2lab.doctor",
        "DoctorReport": "ocfs2lab.doctor",
        "CommandError": "ocfs2lab.errors",
        "CommandFailed": "ocfs2lab.errors",
        "CommandTimeout": "ocfs2lab.errors",
        "CoverageError": "ocfs2lab.errors",
        "ExpectTimeout": "ocfs2lab.errors",
        "ForbiddenEvent": "ocfs2lab.errors",
        "HostError": "ocfs2lab.errors",
        "ImageBuildError": "ocfs2lab.errors",
        "KernelBuildError": "ocfs2lab.errors",
        "KernelErrorsFound": "ocfs2lab.errors",
        "LostWrites": "ocfs2lab.errors",
        "OwnershipError": "ocfs2lab.errors",
        "ParseError": "ocfs2lab.errors",
        "QmpCommandError": "ocfs2lab.errors",
        "SavedStateError": "ocfs2lab.errors",
        "TimelineError": "ocfs2lab.errors",
        "TransportError": "ocfs2lab.errors",
        "WaitTimeout": "ocfs2lab.errors",
        "Comparison": "ocfs2lab.experiment",
        "Fault": "ocfs2lab.experiment",
        "FigureComparison": "ocfs2lab.experiment",
        "RecoveryReport": "ocfs2lab.experiment",
        "RecoverySeries": "ocfs2lab.experiment",
        "RecoveryTimes": "ocfs2lab.experiment",
        "FsckReport": "ocfs2lab.fs",
        "SharedIoWorkload": "ocfs2lab.fs",
        "WorkloadReport": "ocfs2lab.fs",
        "Ledger": "ocfs2lab.host",
        "LocalHost": "ocfs2lab.host",
        "Machine": "ocfs2lab.host",
        "new_lab_id": "ocfs2lab.host",
        "Shell": "ocfs2lab.host",
        "Lifecycle": "ocfs2lab.lifecycle",
        "ContainerNode": "ocfs2lab.node",
        "ContainerSettings": "ocfs2lab.node",
        "DockerNetwork": "ocfs2lab.node",
        "RemoteProcess": "ocfs2lab.node",
        "VmNode": "ocfs2lab.node",
        "Expect": "ocfs2lab.observe",
        "WriteRecorder": "ocfs2lab.observe",
        "LogReporter": "ocfs2lab.report",
        "Reporter": "ocfs2lab.report",
        "CommandResult": "ocfs2lab.runner",
        "DockerExecRunner": "ocfs2lab.runner",
        "LocalRunner": "ocfs2lab.runner",
        "Runner": "ocfs2lab.runner",
        "spawn": "ocfs2lab.runner",
        "Spawned": "ocfs2lab.runner",
        "SshRunner": "ocfs2lab.runner",
        "HeartbeatSpec": "ocfs2lab.spec",
        "NetworkSpec": "ocfs2lab.spec",
        "build_image": "ocfs2lab.vm",
        "build_kernel": "ocfs2lab.vm",
        "KernelBuild": "ocfs2lab.vm",
        "LabImage": "ocfs2lab.vm",
        "QemuMachine": "ocfs2lab.vm",
        "QemuSpec": "ocfs2lab.vm",
        "VdeSwitch": "ocfs2lab.vm.switch",
    },
)
