"""``ocfs2lab doctor``: what this machine has for the lab, what it lacks, and what each gap means.

[`diagnose`][ocfs2lab.doctor.diagnosis.diagnose] looks at every piece the lab uses on this machine
and returns a [`DoctorReport`][ocfs2lab.doctor.report.DoctorReport], one
[`Check`][ocfs2lab.doctor.report.Check] per piece: QEMU and qemu-img, whether KVM really works (the
probe of [`ocfs2lab.vm.accel`][ocfs2lab.vm.accel]) or TCG is used, the image build tools, the VM
interconnect (vde2), ssh, free space and the cached lab image, Docker, the host kernel's OCFS2 and
DRBD, and the optional Python extras. A missing piece is reported, never raised.

Each check has a status: ``ok``; ``warn`` (works, or is not needed by default, but worth
knowing: TCG instead of KVM, no OCFS2 in this machine's own kernel); ``missing`` (a piece the
lab needs is absent); ``error`` (present but broken, or could not be checked). A report is
``ok`` when no check is ``missing`` or ``error``.

Programs run through a [`Runner`][ocfs2lab.runner.base.Runner] (each call with a timeout);
what they print is read by pure functions
([`parse_tool_version`][ocfs2lab.doctor.programs.parse_tool_version],
[`parse_df`][ocfs2lab.doctor.cache.parse_df],
[`parse_proc_filesystems`][ocfs2lab.doctor.host_kernel.parse_proc_filesystems], ...) and judged by
pure functions that turn facts into checks ([`tool_check`][ocfs2lab.doctor.programs.tool_check],
[`kvm_check`][ocfs2lab.doctor.kvm.kvm_check], [`disk_check`][ocfs2lab.doctor.cache.disk_check],
...).

One module per family of checks, under the report they all fill
([`ocfs2lab.doctor.report`][ocfs2lab.doctor.report]) and over which
[`ocfs2lab.doctor.diagnosis`][ocfs2lab.doctor.diagnosis] runs them all:
[`programs`][ocfs2lab.doctor.programs] (QEMU, qemu-img, the image build tools, vde2, ssh),
[`kvm`][ocfs2lab.doctor.kvm], [`cache`][ocfs2lab.doctor.cache] (disk space, the lab image and
kernel), [`docker`][ocfs2lab.doctor.docker], [`host_kernel`][ocfs2lab.doctor.host_kernel] and
[`extras`][ocfs2lab.doctor.extras]. Every name is importable from this package as well.
"""

from ocfs2lab.doctor.cache import (
    DISK_MISSING_BYTES,
    DISK_WARN_BYTES,
    GIB,
    DfRow,
    disk_check,
    image_check,
    lab_kernel_check,
    nearest_directory,
    parse_df,
)
from ocfs2lab.doctor.diagnosis import diagnose
from ocfs2lab.doctor.docker import (
    DEFAULT_DOCKER_ENDPOINT,
    DOCKER_CLI,
    DOCKER_TIMEOUT,
    DOCKERD,
    DockerFacts,
    docker_check,
    ping_docker,
)
from ocfs2lab.doctor.extras import EXTRA_MEANINGS, EXTRAS, extra_check, installed_versions
from ocfs2lab.doctor.host_kernel import (
    DRBD,
    KERNEL_FEATURES,
    OCFS2,
    KernelFacts,
    KernelFeature,
    kernel_check,
    parse_module_list,
    parse_proc_filesystems,
)
from ocfs2lab.doctor.kvm import (
    KVM_DEVICE,
    TCG_MEANING,
    KvmFacts,
    ProbeOutcome,
    describe_probe,
    gather_kvm,
    kvm_check,
)
from ocfs2lab.doctor.programs import (
    QEMU,
    SBIN_DIRS,
    TOOL_TIMEOUT,
    TOOLS,
    Tool,
    parse_tool_version,
    run_program,
    tool_check,
)
from ocfs2lab.doctor.report import FAILING, STATUSES, Check, DoctorReport, Status

__all__ = [
    "DEFAULT_DOCKER_ENDPOINT",
    "DISK_MISSING_BYTES",
    "DISK_WARN_BYTES",
    "DOCKERD",
    "DOCKER_CLI",
    "DOCKER_TIMEOUT",
    "DRBD",
    "EXTRAS",
    "EXTRA_MEANINGS",
    "FAILING",
    "GIB",
    "KERNEL_FEATURES",
    "KVM_DEVICE",
    "OCFS2",
    "QEMU",
    "SBIN_DIRS",
    "STATUSES",
    "TCG_MEANING",
    "TOOLS",
    "TOOL_TIMEOUT",
    "Check",
    "DfRow",
    "DockerFacts",
    "DoctorReport",
    "KernelFacts",
    "KernelFeature",
    "KvmFacts",
    "ProbeOutcome",
    "Status",
    "Tool",
    "describe_probe",
    "diagnose",
    "disk_check",
    "docker_check",
    "extra_check",
    "gather_kvm",
    "image_check",
    "installed_versions",
    "kernel_check",
    "kvm_check",
    "lab_kernel_check",
    "nearest_directory",
    "parse_df",
    "parse_module_list",
    "parse_proc_filesystems",
    "parse_tool_version",
    "ping_docker",
    "run_program",
    "tool_check",
]
