"""Starting a lab machine: the one boot sequence of the lab VM and of VM nodes.

The top of the QEMU launcher (the VM layer), used by the handles above it:
[`LabVm`][ocfs2lab.host.labvm.LabVm] and [`VmNode`][ocfs2lab.node.vm.VmNode] both start their
machine with [`start_machine`][ocfs2lab.vm.boot.start_machine]: a
[`QemuSpec`][ocfs2lab.vm.spec.QemuSpec] and [`BootOptions`][ocfs2lab.vm.boot.BootOptions] in, a
[`StartedMachine`][ocfs2lab.vm.boot.StartedMachine] that answers ssh out. The start itself (a
cold boot or a saved-state restore, the console log, the reporter's phases) is the
[`QemuMachine`][ocfs2lab.vm.machine.QemuMachine]'s; what a handle makes of the started machine
(an SSH host, a node with its interconnect address and timeline note) stays with the handle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from attrs import converters, field, frozen

from ocfs2lab.errors import SpecError
from ocfs2lab.report import Reporter
from ocfs2lab.runner.ssh import SshRunner, SshTarget
from ocfs2lab.vm.console import ConsoleLine
from ocfs2lab.vm.machine import QemuMachine
from ocfs2lab.vm.spec import QemuSpec

#: A console listener: called with every console line, on the console's reader thread.
ConsoleListener = Callable[[ConsoleLine], None]


def _listeners(value: Iterable[ConsoleListener]) -> tuple[ConsoleListener, ...]:
    return tuple(value)


@frozen(kw_only=True)
class BootOptions:
    """How a lab handle starts its machines: the
    [`QemuMachine`][ocfs2lab.vm.machine.QemuMachine] arguments besides the spec.

    Attributes:
        log_dir: Keep the console and QEMU logs here (``<hostname>.console.log``; each
            start of the same host name appends to it).
        keep_failed: Keep the logs of a machine whose start (or block) failed.
        boot_timeout: Seconds a boot may take (default: the machine's, by accelerator).
        reporter: Receives the boot and restore phases (default: the log).
        console_listeners: Called with every console line from the first one on.
        snapshots: Start from a saved state when one is valid (saving it at the first
            start); ``False`` boots cold.
    """

    log_dir: Path | None = field(default=None, converter=converters.optional(Path))
    keep_failed: bool = False
    boot_timeout: float | None = None
    reporter: Reporter | None = None
    console_listeners: tuple[ConsoleListener, ...] = field(default=(), converter=_listeners)
    snapshots: bool = False

    def machine(self, spec: QemuSpec) -> QemuMachine:
        """A machine of ``spec`` with these options, not started yet."""
        return QemuMachine(
            spec,
            log_dir=self.log_dir,
            keep_failed=self.keep_failed,
            boot_timeout=self.boot_timeout,
            reporter=self.reporter,
            console_listeners=self.console_listeners,
            snapshots=self.snapshots,
        )


@frozen
class StartedMachine:
    """A lab machine that answers ssh, as [`start_machine`][ocfs2lab.vm.boot.start_machine]
    returns it.

    Attributes:
        machine: The running machine (QMP, console, pid); closing it powers it off.
        runner: Runs commands in the guest as root over ssh; the machine closes it.
    """

    machine: QemuMachine
    runner: SshRunner

    @property
    def target(self) -> SshTarget:
        """How to reach the guest's sshd."""
        return self.runner.target

    @property
    def how(self) -> str:
        """How the machine started, in words: restored from which state (or why it booted
        cold), or how long its cold boot took."""
        machine = self.machine
        return machine.start_note or f"booted in {machine.boot_seconds or 0:.1f} s"

    def facts(self) -> dict[str, object]:
        """The start's figures, for a timeline note: restored or not, its seconds, the
        instance id and the guest clock's offset (seconds, after a restore)."""
        machine = self.machine
        return {
            "restored": machine.restored,
            "start_s": machine.boot_seconds,
            "instance": machine.instance,
            "clock_offset_s": machine.clock_offset,
        }


def start_machine(
    spec: QemuSpec,
    options: BootOptions | None = None,
    *,
    enter: Callable[[QemuMachine], QemuMachine] | None = None,
) -> StartedMachine:
    """Start a machine of ``spec`` and return once it answers ssh.

    Args:
        spec: What to boot; it must forward ssh.
        options: How (default: [`BootOptions`][ocfs2lab.vm.boot.BootOptions]'s defaults).
        enter: Enters the machine, e.g. a handle's
            [`Lifecycle.enter`][ocfs2lab.lifecycle.Lifecycle.enter], which also closes it with
            the handle. By default the machine enters itself and closing it is the caller's
            job.

    Raises:
        SpecError: ``spec`` does not forward ssh.
        LifecycleError: The start failed; nothing of it is left.
    """
    if not spec.ssh_forward:
        raise SpecError("qemu.ssh_forward", False, "a lab machine is reached over ssh")
    machine = (options or BootOptions()).machine(spec)
    machine = enter(machine) if enter is not None else machine.__enter__()
    return StartedMachine(machine, machine.runner)
