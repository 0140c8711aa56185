"""The QEMU launcher: one lab image, booted as any number of independent machines.

The launcher is three modules of the VM layer, from the bottom up:

* [`ocfs2lab.vm.spec`][ocfs2lab.vm.spec]: what to boot, as values
  ([`QemuSpec`][ocfs2lab.vm.spec.QemuSpec], [`DriveSpec`][ocfs2lab.vm.spec.DriveSpec],
  [`NicSpec`][ocfs2lab.vm.spec.NicSpec], [`SshKey`][ocfs2lab.vm.spec.SshKey]) and QEMU's
  command line built from them ([`build_argv`][ocfs2lab.vm.spec.build_argv]);
* [`ocfs2lab.vm.ownership`][ocfs2lab.vm.ownership]: the owner state of each machine's run
  directory, and the reaping of what crashed owners left
  ([`reap_stale_machines`][ocfs2lab.vm.ownership.reap_stale_machines]);
* [`ocfs2lab.vm.machine`][ocfs2lab.vm.machine]: the running machine
  ([`QemuMachine`][ocfs2lab.vm.machine.QemuMachine]): boot or saved-state restore, ssh, QMP,
  console, poweroff and kill.

[`ocfs2lab.vm.boot`][ocfs2lab.vm.boot] starts a machine for a lab handle (the lab VM, a VM
node). This module gives the names of the three under one roof, as they were before the split:
``from ocfs2lab.vm.qemu import QemuMachine, QemuSpec`` keeps working.
"""

from __future__ import annotations

from ocfs2lab.vm.machine import (
    CLOCK_TOLERANCE_NS,
    PORT_ATTEMPTS,
    QMP_TIMEOUT,
    READY_MARK,
    READY_MARK_GRACE,
    QemuMachine,
    free_port,
    ssh_banner,
)
from ocfs2lab.vm.ownership import proc_start_time, reap_stale_machines, run_root
from ocfs2lab.vm.spec import (
    CONSOLE_LOGLEVEL,
    MAX_CMDLINE,
    MODULES_DRIVE_ID,
    SSH_KEY_PARAM,
    DriveSpec,
    NicSpec,
    QemuSpec,
    SshKey,
    build_argv,
    kernel_cmdline,
    modules_drive,
)

__all__ = [
    "CLOCK_TOLERANCE_NS",
    "CONSOLE_LOGLEVEL",
    "MAX_CMDLINE",
    "MODULES_DRIVE_ID",
    "PORT_ATTEMPTS",
    "QMP_TIMEOUT",
    "READY_MARK",
    "READY_MARK_GRACE",
    "SSH_KEY_PARAM",
    "DriveSpec",
    "NicSpec",
    "QemuMachine",
    "QemuSpec",
    "SshKey",
    "build_argv",
    "free_port",
    "kernel_cmdline",
    "modules_drive",
    "proc_start_time",
    "reap_stale_machines",
    "run_root",
    "ssh_banner",
]
