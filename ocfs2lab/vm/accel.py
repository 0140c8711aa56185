"""Choosing QEMU's accelerator: KVM when it really works, TCG otherwise.

``/dev/kvm`` existing is not enough: under nested virtualisation KVM can abort QEMU (an MSR
it cannot set) or hang a guest at early boot. [`probe_kvm`][ocfs2lab.vm.accel.probe_kvm] therefore
runs real guests under exactly the machine type and CPU model the lab machines use, each with a
short deadline after which QEMU is killed:

1. a 512-byte boot sector that writes to QEMU's ``isa-debug-exit`` port (QEMU exits with a
   known status);
2. when a kernel is given, that kernel booted without a root disk and with ``panic=-1``: it
   runs its whole init, panics on the missing root and QEMU exits (``-no-reboot``). This
   catches hangs that a real-mode boot sector never reaches.

The answer is cached per process. ``OCFS2LAB_ACCEL=kvm|tcg`` overrides the choice.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from ocfs2lab.errors import SpecError
from ocfs2lab.runner.base import Runner
from ocfs2lab.runner.local import LocalRunner

log = logging.getLogger(__name__)

Accel = Literal["kvm", "tcg"]
ACCELS: tuple[Accel, ...] = ("kvm", "tcg")

#: The environment variable that forces an accelerator.
ACCEL_ENV = "OCFS2LAB_ACCEL"
#: The QEMU binary every machine uses.
QEMU_BINARY = "qemu-system-x86_64"
#: Value the probe guest writes to the isa-debug-exit port; QEMU exits with (v << 1) | 1.
PROBE_EXIT_VALUE = 0x2A
PROBE_EXIT_STATUS = (PROBE_EXIT_VALUE << 1) | 1
#: I/O port of the probe's isa-debug-exit device.
PROBE_EXIT_PORT = 0xF4
#: Seconds each probe guest gets; a working KVM needs about a second.
PROBE_TIMEOUT = 15.0
#: The machine type of every lab machine (q35 without the legacy devices the lab does not
#: use: no SATA, SMBus, PS/2, VMware port or USB; q35 has no floppy controller at all).
MACHINE = "q35,sata=off,smbus=off,i8042=off,vmport=off,usb=off"
#: What the kernel probe must print before QEMU exits.
KERNEL_PROBE_MARK = "Kernel panic"


def probe_boot_sector() -> bytes:
    """A 512-byte x86 boot sector that proves the CPU ran it.

    Real-mode code at 0x7c00: write ``K`` to COM1, write `PROBE_EXIT_VALUE` to the
    isa-debug-exit port (QEMU exits at once), then halt forever (should the device be absent).
    """
    code = bytes(
        [
            0xBA, 0xF8, 0x03,  # mov dx, 0x3f8
            0xB0, ord("K"),  # mov al, 'K'
            0xEE,  # out dx, al
            0xBA, PROBE_EXIT_PORT, 0x00,  # mov dx, 0xf4
            0xB0, PROBE_EXIT_VALUE,  # mov al, 0x2a
            0xEE,  # out dx, al
            0xFA,  # cli
            0xF4,  # hlt
            0xEB, 0xFD,  # jmp back to hlt
        ]
    )  # fmt: skip
    return code + bytes(510 - len(code)) + b"\x55\xaa"


def write_probe_image(path: Path) -> Path:
    """Write the probe disk: the boot sector, padded to 1 MiB (SeaBIOS cannot read a disk
    of a single sector)."""
    path.write_bytes(probe_boot_sector())
    os.truncate(path, 1024 * 1024)
    return path


def probe_argv(image: Path, accel: Accel = "kvm") -> list[str]:
    """The QEMU argv that boots the probe sector under ``accel`` (lab machine type and CPU)."""
    return [
        QEMU_BINARY,
        "-machine",
        MACHINE,
        *accel_argv(accel),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-m",
        "64",
        "-device",
        f"isa-debug-exit,iobase={PROBE_EXIT_PORT:#x},iosize=0x04",
        "-drive",
        f"file={image},format=raw,if=virtio,snapshot=on",
        "-no-reboot",
    ]


def kernel_probe_argv(kernel: Path, accel: Accel = "kvm") -> list[str]:
    """The QEMU argv that boots ``kernel`` with no root disk; it panics and QEMU exits."""
    return [
        QEMU_BINARY,
        "-machine",
        MACHINE,
        *accel_argv(accel),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-m",
        "256",
        "-kernel",
        str(kernel),
        "-append",
        "console=ttyS0 loglevel=1 panic=-1",
        "-serial",
        "stdio",
        "-no-reboot",
    ]


def kvm_device_usable(path: str = "/dev/kvm") -> bool:
    """True when ``path`` exists and this process may open it read-write."""
    return os.path.exists(path) and os.access(path, os.R_OK | os.W_OK)


def probe_kvm(
    kernel: Path | None = None,
    runner: Runner | None = None,
    *,
    timeout: float = PROBE_TIMEOUT,
) -> bool:
    """Boot the probe guests under KVM; True only when each exits as expected in time.

    Args:
        kernel: A kernel to boot as the second probe (the lab image's ``vmlinuz``); without
            one only the boot sector runs.
        runner: Runs QEMU (a local runner by default).
        timeout: Seconds per probe guest; QEMU is killed when it passes (never hangs).
    """
    if not kvm_device_usable():
        log.debug("kvm probe: /dev/kvm missing or not accessible")
        return False
    runner = runner or LocalRunner()
    with tempfile.TemporaryDirectory(prefix="ocfs2lab-kvm-") as tmp:
        image = write_probe_image(Path(tmp) / "probe.img")
        result = runner.run(probe_argv(image), check=False, timeout=timeout)
    ok = result.exit_code == PROBE_EXIT_STATUS and not result.timed_out
    _log_probe("boot sector", ok, result.exit_code, result.timed_out, result.duration)
    if ok and kernel is not None:
        result = runner.run(kernel_probe_argv(kernel), check=False, timeout=timeout)
        ok = result.ok and KERNEL_PROBE_MARK in result.stdout
        _log_probe(f"kernel {kernel.name}", ok, result.exit_code, result.timed_out, result.duration)
    return ok


def _log_probe(what: str, ok: bool, code: int, timed_out: bool, seconds: float) -> None:
    log.info(
        "kvm probe (%s): %s (exit %s%s, %.2f s)",
        what,
        "usable" if ok else "NOT usable",
        code,
        ", timed out" if timed_out else "",
        seconds,
    )


def choose_accel(override: str | None, kvm_works: Callable[[], bool]) -> Accel:
    """The accelerator to use: ``override`` when set, else KVM if ``kvm_works()``, else TCG.

    ``kvm_works`` is only called when there is no override.

    Raises:
        SpecError: ``override`` is set to something other than ``kvm`` or ``tcg``.
    """
    if override is not None and override.strip():
        value = override.strip().lower()
        if value not in ACCELS:
            raise SpecError(ACCEL_ENV, override, "must be 'kvm' or 'tcg'")
        return "kvm" if value == "kvm" else "tcg"
    return "kvm" if kvm_works() else "tcg"


_cache_lock = threading.Lock()
_cached_kvm: bool | None = None


def kvm_usable(kernel: Path | None = None, runner: Runner | None = None) -> bool:
    """[`probe_kvm`][ocfs2lab.vm.accel.probe_kvm], run once per process; later calls return the
    cached answer."""
    global _cached_kvm  # noqa: PLW0603 - a per-process cache is the point
    with _cache_lock:
        if _cached_kvm is None:
            _cached_kvm = probe_kvm(kernel, runner)
        return _cached_kvm


def default_accel(kernel: Path | None = None, runner: Runner | None = None) -> Accel:
    """The accelerator for new machines: ``$OCFS2LAB_ACCEL``, else the (cached) KVM probe.

    Args:
        kernel: The kernel the machine will boot, used by the probe (see
            [`probe_kvm`][ocfs2lab.vm.accel.probe_kvm]).
        runner: Runs the probe.

    Raises:
        SpecError: ``$OCFS2LAB_ACCEL`` holds something other than ``kvm`` or ``tcg``.
    """
    return choose_accel(os.environ.get(ACCEL_ENV), lambda: kvm_usable(kernel, runner))


def accel_argv(accel: Accel) -> list[str]:
    """QEMU options for ``accel``: ``-accel kvm -cpu host`` or multi-threaded TCG, ``-cpu max``."""
    if accel == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg,thread=multi", "-cpu", "max"]
