"""QEMU machine specs and their argv: what to boot, as values and pure functions.

The lowest part of the QEMU launcher (the VM layer): a [`QemuSpec`][ocfs2lab.vm.spec.QemuSpec]
says what machine to boot (image, size, kernel command line, extra disks
([`DriveSpec`][ocfs2lab.vm.spec.DriveSpec]) and NICs ([`NicSpec`][ocfs2lab.vm.spec.NicSpec]), the
ssh key ([`SshKey`][ocfs2lab.vm.spec.SshKey])), and
[`build_argv`][ocfs2lab.vm.spec.build_argv] turns it into QEMU's command line without touching
a file. [`guest_view`][ocfs2lab.vm.spec.guest_view] is that command line as the guest sees it,
which decides whether two machines can share a saved state
([`ocfs2lab.vm.states`][ocfs2lab.vm.states]).
[`QemuMachine`][ocfs2lab.vm.machine.QemuMachine] runs a spec.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import attrs
from attrs import field, frozen, validators

from ocfs2lab.errors import SpecError
from ocfs2lab.runner.base import Runner
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.vm.accel import MACHINE, QEMU_BINARY, Accel, accel_argv
from ocfs2lab.vm.recipe import SSH_NIC_MAC, LabImage
from ocfs2lab.vm.states import RAM_BACKEND_ID, MemoryFile

#: Console log level of the guest kernel: messages below it reach the serial console. 7 lets
#: KERN_INFO (6) through, which o2net, o2dlm and ocfs2 use for their state changes.
CONSOLE_LOGLEVEL = 7
#: Longest kernel command line x86 accepts (``COMMAND_LINE_SIZE``), terminating NUL included.
MAX_CMDLINE = 2047
#: Kernel command line parameter carrying the per-VM ssh public key (``<type>:<base64>``).
SSH_KEY_PARAM = "ocfs2lab.ssh_key"

_ID = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
_SERIAL = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
_CMDLINE_WORD = re.compile(r"^[^\s\"]+$")


# -- specs ---------------------------------------------------------------------------------------
def _check_id(_inst: object, attr: Any, value: str) -> None:
    if not _ID.match(value) or value in {"root", "ssh0"}:
        raise SpecError(
            f"qemu.{attr.name}",
            value,
            "must be a short lower-case id ([a-z][a-z0-9_-]*), not 'root' or 'ssh0'",
        )


def _mac(value: str) -> str:
    return value.lower()


def _check_mac(_inst: object, _attr: object, value: str) -> None:
    if not _MAC.match(value) or value == SSH_NIC_MAC:
        raise SpecError(
            "qemu.nic.mac", value, f"must be a unicast MAC address other than {SSH_NIC_MAC}"
        )
    if int(value[:2], 16) & 1:
        raise SpecError("qemu.nic.mac", value, "must be a unicast address (even first octet)")


def _check_serial(_inst: object, _attr: object, value: str) -> None:
    if not _SERIAL.match(value):
        raise SpecError("qemu.drive.serial", value, "must be 1-20 characters [A-Za-z0-9_-]")


def _one_of(*options: object) -> Any:
    def check(_inst: object, attr: Any, value: object) -> None:
        if value not in options:
            raise SpecError(f"qemu.{attr.name}", value, f"must be one of {list(options)}")

    return check


def _words(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _drives(value: Iterable[DriveSpec]) -> tuple[DriveSpec, ...]:
    return tuple(value)


def _nics(value: Iterable[NicSpec]) -> tuple[NicSpec, ...]:
    return tuple(value)


def _abs_path(value: str | os.PathLike[str]) -> Path:
    return Path(value).absolute()


@frozen
class DriveSpec:
    """An extra virtio-blk disk, e.g. the shared disk of a VM cluster.

    The guest finds it as ``/dev/disk/by-id/virtio-<serial>``. With ``shared`` the same file
    can be attached to several machines at once (``share-rw=on``, ``file.locking=off``); use
    ``cache="none"`` (O_DIRECT) so that writes of one guest reach the file before another
    guest reads it.

    Attributes:
        id: Device id (QMP ``block_set_io_throttle`` takes it).
        path: Image file on the host.
        serial: Serial number the guest sees.
        format: ``raw`` or ``qcow2``.
        shared: Attach for concurrent use by several machines.
        cache: QEMU cache mode.
        read_only: Attach read-only.
    """

    id: str = field(validator=_check_id)
    path: Path = field(converter=_abs_path)
    serial: str = field(validator=_check_serial)
    format: Literal["raw", "qcow2"] = field(default="raw", validator=_one_of("raw", "qcow2"))
    shared: bool = True
    cache: Literal["none", "writeback", "writethrough", "directsync", "unsafe"] = field(
        default="none",
        validator=_one_of("none", "writeback", "writethrough", "directsync", "unsafe"),
    )
    read_only: bool = False

    def argv(self) -> list[str]:
        """The ``-drive``/``-device`` options for this disk."""
        drive = [
            f"file={self.path}",
            f"format={self.format}",
            "if=none",
            f"id=drv-{self.id}",
            f"cache={self.cache}",
        ]
        if self.shared:
            drive.append("file.locking=off")
        if self.read_only:
            drive.append("readonly=on")
        device = [
            "virtio-blk-pci",
            f"drive=drv-{self.id}",
            f"id={self.id}",
            f"serial={self.serial}",
        ]
        if self.shared:
            device.append("share-rw=on")
        return ["-drive", ",".join(drive), "-device", ",".join(device)]


@frozen
class NicSpec:
    """An extra virtio NIC on a VDE switch, e.g. a VM cluster's interconnect.

    Attributes:
        id: Net client id; QMP ``set_link`` takes it (``set_link c0 off`` cuts the link).
        vde_socket: The ``vde_switch -s`` directory on the host.
        mac: The NIC's MAC address (unique on the switch).
    """

    id: str = field(validator=_check_id)
    vde_socket: Path = field(converter=_abs_path)
    mac: str = field(converter=_mac, validator=_check_mac)

    def argv(self) -> list[str]:
        """The ``-netdev``/``-device`` options for this NIC."""
        return [
            "-netdev",
            f"vde,id={self.id},sock={self.vde_socket}",
            "-device",
            f"virtio-net-pci,netdev={self.id},mac={self.mac},id={self.id}-dev",
        ]


def _check_hostname(_inst: object, _attr: object, value: str) -> None:
    if not _HOSTNAME.match(value):
        raise SpecError("qemu.hostname", value, "must be a host name label (letters, digits, -)")


def _check_range(low: int, high: int) -> Any:
    def check(_inst: object, attr: Any, value: int) -> None:
        if not low <= value <= high:
            raise SpecError(f"qemu.{attr.name}", value, f"must be between {low} and {high}")

    return check


def _check_cmdline(_inst: object, _attr: object, value: tuple[str, ...]) -> None:
    for word in value:
        if not _CMDLINE_WORD.match(word):
            raise SpecError(
                "qemu.cmdline_extra", word, "each word must be non-empty, without spaces or quotes"
            )
        if word.startswith(f"{SSH_KEY_PARAM}="):
            raise SpecError("qemu.cmdline_extra", word, "the ssh key is set by the machine")


def _check_unique_ids(inst: QemuSpec, _attr: object, _value: object) -> None:
    ids = [d.id for d in inst.drives] + [n.id for n in inst.nics]
    if MODULES_DRIVE_ID in ids:
        raise SpecError(
            "qemu.drives/nics", MODULES_DRIVE_ID, "is the lab kernel's modules disk's id"
        )
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise SpecError("qemu.drives/nics", dupes, "device ids must be unique")


@frozen
class SshKey:
    """A throwaway ssh key pair for lab machines.

    Attributes:
        private_key: The private key file (mode 0600).
        public_key: The public key line (``ssh-ed25519 AAAA... comment``).
    """

    private_key: Path = field(converter=_abs_path)
    public_key: str

    @classmethod
    def generate(
        cls, directory: Path, *, runner: Runner | None = None, name: str = "id_ed25519"
    ) -> SshKey:
        """Make a new ed25519 key pair in ``directory`` (``ssh-keygen``, no passphrase).

        Raises:
            CommandFailed: ssh-keygen failed.
        """
        runner = runner or LocalRunner()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / name
        for stale in (path, path.with_suffix(".pub")):
            stale.unlink(missing_ok=True)
        runner.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ocfs2lab", "-f", str(path)],
            timeout=30,
        )
        return cls(path, path.with_suffix(".pub").read_text().strip())

    @property
    def kernel_arg(self) -> str:
        """The kernel command line word carrying the public key: ``ocfs2lab.ssh_key=type:b64``."""
        parts = self.public_key.split()
        if len(parts) < 2:
            raise SpecError(
                "ssh_key.public_key", self.public_key, "is not an OpenSSH public key line"
            )
        return f"{SSH_KEY_PARAM}={parts[0]}:{parts[1]}"

    def remove(self) -> None:
        """Delete both key files."""
        for path in (self.private_key, self.private_key.with_suffix(".pub")):
            path.unlink(missing_ok=True)


@frozen
class QemuSpec:
    """What machine to boot.

    Attributes:
        image: The lab image to boot (never written unless ``write_base``).
        hostname: Guest host name (``systemd.hostname=`` on the kernel command line); o2cb
            takes it as the node name.
        memory_mib: Guest memory.
        cpus: Virtual CPUs.
        accel: ``kvm`` or ``tcg``; ``None`` chooses (``$OCFS2LAB_ACCEL``, else a KVM probe).
        cmdline_extra: More kernel command line words.
        drives: Extra disks (the shared disk of a VM cluster).
        nics: Extra NICs (the interconnect of a VM cluster).
        ssh_forward: Forward a local port to the guest's sshd (readiness is then "ssh
            answers"; without it, "QEMU runs").
        ssh_key: The key to log in with; ``None`` makes a throwaway one per machine. Pass one
            key to all machines of a lab.
        no_reboot: A guest reboot (or panic, or OCFS2 fencing) makes QEMU exit.
        write_base: Boot the image itself writable, without an overlay. Only for building
            images (the provisioning boot).

    Raises:
        SpecError: A field breaks its rule.
    """

    image: LabImage = field(validator=validators.instance_of(LabImage))
    hostname: str = field(default="ocfs2lab", validator=_check_hostname)
    memory_mib: int = field(default=2048, validator=_check_range(256, 1024 * 1024))
    cpus: int = field(default=2, validator=_check_range(1, 64))
    accel: Accel | None = field(default=None, validator=_one_of(None, "kvm", "tcg"))
    cmdline_extra: tuple[str, ...] = field(default=(), converter=_words, validator=_check_cmdline)
    drives: tuple[DriveSpec, ...] = field(
        default=(), converter=_drives, validator=_check_unique_ids
    )
    nics: tuple[NicSpec, ...] = field(default=(), converter=_nics, validator=_check_unique_ids)
    ssh_forward: bool = True
    ssh_key: SshKey | None = None
    no_reboot: bool = True
    write_base: bool = False


# -- pure argv building ---------------------------------------------------------------------------
def kernel_cmdline(spec: QemuSpec, ssh_key: SshKey | None) -> str:
    """The guest kernel's command line.

    Raises:
        SpecError: It would be longer than the kernel accepts.
    """
    # Debian's kernel finds the root by label in its initramfs; a lab kernel has no
    # initramfs and the root disk is the machine's first virtio disk.
    root = f"LABEL={spec.image.root_label}" if spec.image.initrd is not None else "/dev/vda"
    words = [
        f"root={root}",
        "rootfstype=ext4",
        "rw",
        "console=ttyS0,115200",
        f"loglevel={CONSOLE_LOGLEVEL}",
        "fsck.mode=skip",
        # Boot-time savings under emulation; a throwaway lab VM needs none of what they skip.
        "cryptomgr.notests",  # the crypto self-tests
        "mitigations=off",  # CPU vulnerability mitigations (page table switches are dear)
        "audit=0",
        "8250.nr_uarts=1",
        "tsc=reliable",  # no clocksource watchdog: an emulated TSC under load looks unstable
        "no_timer_check",
        "panic=1",
        f"systemd.hostname={spec.hostname}",
        "systemd.show_status=auto",
    ]
    if ssh_key is not None:
        words.append(ssh_key.kernel_arg)
    words.extend(spec.cmdline_extra)
    line = " ".join(words)
    if len(line) > MAX_CMDLINE:
        raise SpecError(
            "qemu.cmdline_extra",
            line[:80] + "...",
            f"the kernel command line exceeds {MAX_CMDLINE} bytes",
        )
    return line


def build_argv(
    spec: QemuSpec,
    *,
    accel: Accel,
    root_disk: Path,
    qmp_socket: Path,
    ssh_port: int | None,
    ssh_key: SshKey | None,
    name: str | None = None,
    pidfile: Path | None = None,
    uuid: str | None = None,
    memory: MemoryFile | None = None,
    incoming: bool = False,
) -> list[str]:
    """The full QEMU argv for ``spec`` (pure: no files are touched).

    Args:
        spec: The machine.
        accel: The accelerator to use.
        root_disk: The disk to boot: the machine's qcow2 overlay, or with ``write_base`` the
            raw base image itself.
        qmp_socket: Path of the QMP unix socket QEMU creates.
        ssh_port: Local port forwarded to the guest's port 22, or ``None``.
        ssh_key: Key whose public half goes on the kernel command line.
        name: QEMU's ``-name`` (defaults to ``ocfs2lab-<hostname>``).
        pidfile: Where QEMU writes its pid (it also puts the machine's run directory on
            QEMU's command line, which
            [`reap_stale_machines`][ocfs2lab.vm.ownership.reap_stale_machines] checks).
        uuid: The machine's SMBIOS UUID. systemd derives the machine id from it (the image's
            ``/etc/machine-id`` is empty), so each machine needs its own.
        memory: Guest RAM in a file (saving or restoring a state); plain RAM otherwise.
        incoming: Start stopped, waiting for a device state (``-incoming defer``).
    """
    if spec.write_base:
        root = f"file={root_disk},format=raw,if=none,id=drv-root,cache=writeback,discard=unmap"
    else:
        # The overlay is thrown away with the machine: guest flushes need not reach the disk.
        root = f"file={root_disk},format=qcow2,if=none,id=drv-root,cache=unsafe,discard=unmap"
    netdev = "user,id=ssh0"
    if ssh_port is not None:
        netdev += f",hostfwd=tcp:127.0.0.1:{ssh_port}-:22"
    argv = [
        QEMU_BINARY,
        "-name",
        name or f"ocfs2lab-{spec.hostname}",
        "-machine",
        MACHINE if memory is None else f"{MACHINE},memory-backend={RAM_BACKEND_ID}",
        *accel_argv(accel),
        "-smp",
        str(spec.cpus),
        "-m",
        str(spec.memory_mib),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-vga",
        "none",
        "-kernel",
        str(spec.image.kernel),
        *(["-initrd", str(spec.image.initrd)] if spec.image.initrd is not None else []),
        "-append",
        kernel_cmdline(spec, ssh_key),
        "-drive",
        root,
        "-device",
        "virtio-blk-pci,drive=drv-root,id=root",
        "-netdev",
        netdev,
        "-device",
        f"virtio-net-pci,netdev=ssh0,mac={SSH_NIC_MAC},id=ssh0-dev",
        "-device",
        "virtio-rng-pci",
        # A new generation ID at every start: a restored guest learns that it is a clone
        # and reseeds its RNG at once (Linux VMGENID).
        "-device",
        "vmgenid,guid=auto",
        "-chardev",
        "stdio,id=con0,signal=off",
        "-serial",
        "chardev:con0",
        "-qmp",
        f"unix:{qmp_socket},server=on,wait=off",
    ]
    if spec.image.modules_disk is not None:
        argv += modules_drive(spec.image.modules_disk).argv()
    for drive in spec.drives:
        argv += drive.argv()
    for nic in spec.nics:
        argv += nic.argv()
    if spec.no_reboot:
        argv.append("-no-reboot")
    if pidfile is not None:
        argv += ["-pidfile", str(pidfile)]
    if uuid is not None:
        argv += ["-uuid", uuid]
    if memory is not None:
        argv += memory.argv()
    if incoming:
        argv += ["-S", "-incoming", "defer"]
    return argv


#: Device id and serial of the modules disk of a lab kernel.
MODULES_DRIVE_ID = "modules"


def modules_drive(path: Path) -> DriveSpec:
    """The read-only disk that carries a lab kernel's modules (found by its label)."""
    return DriveSpec(
        id=MODULES_DRIVE_ID,
        path=path,
        serial="ocfs2lab-modules",
        shared=False,
        cache="writeback",
        read_only=True,
    )


# -- the guest's view ------------------------------------------------------------------------------
def state_inputs(spec: QemuSpec) -> dict[str, Path]:
    """The image and kernel files a saved state of a machine of ``spec`` depends on, by role."""
    image = spec.image
    inputs = {"root disk": image.root_disk.absolute(), "kernel": image.kernel.absolute()}
    if image.initrd is not None:
        inputs["initrd"] = image.initrd.absolute()
    if image.modules_disk is not None:
        inputs["modules disk"] = image.modules_disk.absolute()
    return inputs


def guest_view(spec: QemuSpec, accel: Accel) -> list[str]:
    """What the guest sees of a machine of ``spec``: the QEMU options with every host-side
    part (file paths, ports, sockets, names, keys) replaced by a placeholder, and the extra
    disks' sizes (read from their files). Two machines with equal views can share a saved
    state."""
    image = attrs.evolve(
        spec.image,
        root_disk=Path("/image/root"),
        kernel=Path("/image/kernel"),
        initrd=Path("/image/initrd") if spec.image.initrd is not None else None,
        modules_disk=Path("/image/modules") if spec.image.modules_disk is not None else None,
    )
    canonical = attrs.evolve(
        spec,
        image=image,
        drives=[attrs.evolve(d, path=Path(f"/drive/{d.id}")) for d in spec.drives],
        nics=[attrs.evolve(n, vde_socket=Path("/switch")) for n in spec.nics],
        ssh_key=None,
    )
    argv = build_argv(
        canonical,
        accel=accel,
        root_disk=Path("/overlay"),
        qmp_socket=Path("/qmp"),
        ssh_port=22 if spec.ssh_forward else None,
        ssh_key=None,
        name="machine",
        memory=MemoryFile(Path("/ram"), spec.memory_mib, shared=False),
    )
    sizes = [f"{d.id}:{d.path.stat().st_size}" for d in spec.drives]
    return [*argv, *sizes]
