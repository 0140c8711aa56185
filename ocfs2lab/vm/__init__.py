"""The lab image and the QEMU launcher: one image and one launcher for the lab host VM and
for VM cluster nodes.

* [`build_image`][ocfs2lab.vm.image.build_image] makes (once, cached) a
  [`LabImage`][ocfs2lab.vm.recipe.LabImage] from an [`ImageRecipe`][ocfs2lab.vm.recipe.ImageRecipe];
* [`build_kernel`][ocfs2lab.vm.kernel.build_kernel] makes (once, cached) the lab kernel, a
  [`KernelBuild`][ocfs2lab.vm.kernel.KernelBuild] of a
  [`KernelRecipe`][ocfs2lab.vm.recipe.KernelRecipe] (Debian's kernel source with gcov of OCFS2 and
  DRBD), which the default image boots;
* [`QemuMachine`][ocfs2lab.vm.machine.QemuMachine] boots a
  [`QemuSpec`][ocfs2lab.vm.spec.QemuSpec] from a per-VM overlay of that image, or restores it
  from a saved state ([`ocfs2lab.vm.states`][ocfs2lab.vm.states]);
  [`start_machine`][ocfs2lab.vm.boot.start_machine] does so for a lab handle;
* [`reap_stale`][ocfs2lab.vm.ownership.reap_stale] cleans up what machines, switches and VM
  clusters of crashed owners left ([`ocfs2lab.vm.ownership`][ocfs2lab.vm.ownership]).
"""

from ocfs2lab.errors import (
    ImageBuildError,
    KernelBuildError,
    QmpCommandError,
    SavedStateError,
    SourceError,
)
from ocfs2lab.vm.accel import Accel, choose_accel, default_accel, kvm_usable, probe_kvm
from ocfs2lab.vm.console import ConsoleLine, SerialConsole, parse_console_log
from ocfs2lab.vm.image import (
    build_image,
    find_image,
    prune_images,
    read_manifest,
)
from ocfs2lab.vm.kernel import KernelBuild, build_kernel, find_kernel
from ocfs2lab.vm.machine import QemuMachine
from ocfs2lab.vm.ownership import reap_stale, reap_stale_machines
from ocfs2lab.vm.qmp import QmpConnection, QmpEvent
from ocfs2lab.vm.recipe import (
    NODE_IMAGE,
    ROOT_LABEL,
    ImageRecipe,
    KernelRecipe,
    LabImage,
    cache_root,
)
from ocfs2lab.vm.spec import DriveSpec, NicSpec, QemuSpec, SshKey, build_argv, kernel_cmdline
from ocfs2lab.vm.states import SavedState, snapshots_wanted

__all__ = [
    "NODE_IMAGE",
    "ROOT_LABEL",
    "Accel",
    "ConsoleLine",
    "DriveSpec",
    "ImageBuildError",
    "ImageRecipe",
    "KernelBuild",
    "KernelBuildError",
    "KernelRecipe",
    "LabImage",
    "NicSpec",
    "QemuMachine",
    "QemuSpec",
    "QmpCommandError",
    "QmpConnection",
    "QmpEvent",
    "SavedState",
    "SavedStateError",
    "SerialConsole",
    "SourceError",
    "SshKey",
    "build_argv",
    "build_image",
    "build_kernel",
    "cache_root",
    "choose_accel",
    "default_accel",
    "find_image",
    "find_kernel",
    "kernel_cmdline",
    "kvm_usable",
    "parse_console_log",
    "probe_kvm",
    "prune_images",
    "read_manifest",
    "reap_stale",
    "reap_stale_machines",
    "snapshots_wanted",
]
