"""QemuSpec validation and QEMU argv / kernel command line building (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocfs2lab.errors import SpecError
from ocfs2lab.vm import machine as machine_mod
from ocfs2lab.vm import ownership, qemu
from ocfs2lab.vm import spec as spec_mod
from ocfs2lab.vm.accel import MACHINE
from ocfs2lab.vm.recipe import SSH_NIC_MAC, ImageRecipe, LabImage
from ocfs2lab.vm.spec import (
    MAX_CMDLINE,
    DriveSpec,
    NicSpec,
    QemuSpec,
    SshKey,
    build_argv,
    kernel_cmdline,
)

KEY = SshKey(Path("/k/id"), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1Ed9Idgw lab")


def image() -> LabImage:
    return LabImage.in_directory(Path("/img"), ImageRecipe())


def argv_of(spec: QemuSpec, **kw: object) -> list[str]:
    args: dict[str, object] = {
        "accel": "tcg",
        "root_disk": Path("/run/vm/root.qcow2"),
        "qmp_socket": Path("/tmp/o2vm-x/qmp.sock"),
        "ssh_port": 2222,
        "ssh_key": KEY,
    }
    args.update(kw)
    return build_argv(spec, **args)  # type: ignore[arg-type]


def option(argv: list[str], name: str) -> list[str]:
    """Every value given to option ``name``."""
    return [argv[i + 1] for i, a in enumerate(argv) if a == name]


def test_default_argv() -> None:
    argv = argv_of(QemuSpec(image=image(), hostname="node1"))
    assert argv[0] == "qemu-system-x86_64"
    assert option(argv, "-machine") == [MACHINE]
    assert "sata=off" in MACHINE and MACHINE.startswith("q35")  # q35: no floppy controller
    assert option(argv, "-accel") == ["tcg,thread=multi"]
    assert option(argv, "-cpu") == ["max"]
    assert option(argv, "-smp") == ["2"]
    assert option(argv, "-m") == ["2048"]
    assert "-nodefaults" in argv
    assert "-no-reboot" in argv
    assert option(argv, "-kernel") == ["/img/vmlinuz"]
    assert option(argv, "-initrd") == ["/img/initrd.img"]
    assert option(argv, "-drive") == [
        "file=/run/vm/root.qcow2,format=qcow2,if=none,id=drv-root,cache=unsafe,discard=unmap"
    ]
    assert option(argv, "-netdev") == ["user,id=ssh0,hostfwd=tcp:127.0.0.1:2222-:22"]
    assert f"virtio-net-pci,netdev=ssh0,mac={SSH_NIC_MAC},id=ssh0-dev" in option(argv, "-device")
    assert option(argv, "-serial") == ["chardev:con0"]
    assert option(argv, "-chardev") == ["stdio,id=con0,signal=off"]
    assert option(argv, "-qmp") == ["unix:/tmp/o2vm-x/qmp.sock,server=on,wait=off"]
    assert option(argv, "-name") == ["ocfs2lab-node1"]


def test_kvm_argv() -> None:
    argv = argv_of(QemuSpec(image=image()), accel="kvm")
    assert option(argv, "-accel") == ["kvm"]
    assert option(argv, "-cpu") == ["host"]


def test_write_base_boots_raw_image_writable() -> None:
    argv = argv_of(QemuSpec(image=image(), write_base=True), root_disk=Path("/img/root.img"))
    assert option(argv, "-drive") == [
        "file=/img/root.img,format=raw,if=none,id=drv-root,cache=writeback,discard=unmap"
    ]


def test_no_ssh_forward_no_reboot_off_pidfile() -> None:
    argv = argv_of(
        QemuSpec(image=image(), ssh_forward=False, no_reboot=False),
        ssh_port=None,
        pidfile=Path("/run/vm/qemu.pid"),
    )
    assert option(argv, "-netdev") == ["user,id=ssh0"]
    assert "-no-reboot" not in argv
    assert option(argv, "-pidfile") == ["/run/vm/qemu.pid"]


def test_kernel_cmdline() -> None:
    spec = QemuSpec(image=image(), hostname="node2", cmdline_extra=("ocfs2.debug=1", "quiet"))
    line = kernel_cmdline(spec, KEY)
    words = line.split()
    assert "root=LABEL=ocfs2lab-root" in words
    assert "console=ttyS0,115200" in words
    assert "loglevel=7" in words  # KERN_INFO o2net/o2dlm lines reach the console
    assert "systemd.hostname=node2" in words
    assert "ocfs2lab.ssh_key=ssh-ed25519:AAAAC3NzaC1lZDI1NTE5AAAAIG1Ed9Idgw" in words
    assert words[-2:] == ["ocfs2.debug=1", "quiet"]
    assert "ocfs2lab.ssh_key" not in kernel_cmdline(spec, None)
    argv = argv_of(spec)
    assert option(argv, "-append") == [line]


def test_kernel_cmdline_too_long() -> None:
    spec = QemuSpec(image=image(), cmdline_extra=("x" * (MAX_CMDLINE + 1),))
    with pytest.raises(SpecError) as err:
        kernel_cmdline(spec, KEY)
    assert err.value.field == "qemu.cmdline_extra"
    assert f"exceeds {MAX_CMDLINE} bytes" in err.value.rule


def test_shared_drive_and_nic_argv() -> None:
    drive = DriveSpec(id="shared", path=Path("/lab/shared.raw"), serial="ocfs2shared")
    nic = NicSpec(id="c0", vde_socket=Path("/lab/vde"), mac="52:54:00:AA:00:02")
    argv = argv_of(QemuSpec(image=image(), drives=(drive,), nics=(nic,)))
    drives = option(argv, "-drive")
    assert drives[1] == (
        "file=/lab/shared.raw,format=raw,if=none,id=drv-shared,cache=none,file.locking=off"
    )
    devices = option(argv, "-device")
    assert "virtio-blk-pci,drive=drv-shared,id=shared,serial=ocfs2shared,share-rw=on" in devices
    assert "virtio-net-pci,netdev=c0,mac=52:54:00:aa:00:02,id=c0-dev" in devices
    assert "vde,id=c0,sock=/lab/vde" in option(argv, "-netdev")


def test_unshared_read_only_drive() -> None:
    drive = DriveSpec(
        id="data", path=Path("/d.qcow2"), serial="d1", format="qcow2", shared=False,
        cache="writeback", read_only=True,
    )  # fmt: skip
    assert drive.argv() == [
        "-drive",
        "file=/d.qcow2,format=qcow2,if=none,id=drv-data,cache=writeback,readonly=on",
        "-device",
        "virtio-blk-pci,drive=drv-data,id=data,serial=d1",
    ]


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: QemuSpec(image=image(), hostname="bad_name"), "qemu.hostname"),
        (lambda: QemuSpec(image=image(), hostname="-x"), "qemu.hostname"),
        (lambda: QemuSpec(image=image(), memory_mib=10), "qemu.memory_mib"),
        (lambda: QemuSpec(image=image(), cpus=0), "qemu.cpus"),
        (lambda: QemuSpec(image=image(), accel="xen"), "qemu.accel"),  # type: ignore[arg-type]
        (lambda: QemuSpec(image=image(), cmdline_extra=("two words",)), "qemu.cmdline_extra"),
        (
            lambda: QemuSpec(image=image(), cmdline_extra=("ocfs2lab.ssh_key=x:y",)),
            "qemu.cmdline_extra",
        ),
        (lambda: DriveSpec(id="root", path=Path("/x"), serial="s"), "qemu.id"),
        (lambda: DriveSpec(id="Shared", path=Path("/x"), serial="s"), "qemu.id"),
        (lambda: DriveSpec(id="d", path=Path("/x"), serial="x" * 21), "qemu.drive.serial"),
        (lambda: NicSpec(id="c0", vde_socket=Path("/v"), mac=SSH_NIC_MAC), "qemu.nic.mac"),
        (
            lambda: NicSpec(id="c0", vde_socket=Path("/v"), mac="01:00:5e:00:00:01"),
            "qemu.nic.mac",
        ),
        (
            lambda: NicSpec(id="c0", vde_socket=Path("/v"), mac="52:54:00:zz:00:01"),
            "qemu.nic.mac",
        ),
        (
            lambda: QemuSpec(
                image=image(),
                drives=(DriveSpec(id="c0", path=Path("/x"), serial="s"),),
                nics=(NicSpec(id="c0", vde_socket=Path("/v"), mac="52:54:00:00:00:02"),),
            ),
            "qemu.drives/nics",
        ),
    ],
)
def test_spec_validation(make: object, field: str) -> None:
    with pytest.raises(SpecError) as err:
        make()  # type: ignore[operator]
    assert err.value.field == field


def test_ssh_key_kernel_arg() -> None:
    assert KEY.kernel_arg == "ocfs2lab.ssh_key=ssh-ed25519:AAAAC3NzaC1lZDI1NTE5AAAAIG1Ed9Idgw"
    with pytest.raises(SpecError) as err:
        _ = SshKey(Path("/k"), "garbage").kernel_arg
    assert (err.value.field, err.value.value) == ("ssh_key.public_key", "garbage")


def test_a_lab_kernel_boots_without_initrd_and_brings_its_modules_disk() -> None:
    lab = image().with_kernel(Path("/k/bzImage"), Path("/k/modules.img"))
    spec = QemuSpec(image=lab, drives=[DriveSpec("shared", Path("/d/shared.img"), "shared")])
    argv = build_argv(
        spec,
        accel="tcg",
        root_disk=Path("/run/root.qcow2"),
        qmp_socket=Path("/run/qmp.sock"),
        ssh_port=2222,
        ssh_key=None,
    )
    assert argv[argv.index("-kernel") + 1] == "/k/bzImage"
    assert "-initrd" not in argv
    line = argv[argv.index("-append") + 1]
    assert "root=/dev/vda" in line.split() and "root=LABEL=ocfs2lab-root" not in line
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    # The root disk first (it is /dev/vda), then the modules disk read-only, then the rest.
    assert drives[0].startswith("file=/run/root.qcow2")
    assert drives[1].startswith("file=/k/modules.img") and "readonly=on" in drives[1]
    assert drives[2].startswith("file=/d/shared.img")
    with pytest.raises(SpecError, match="modules disk"):
        QemuSpec(image=lab, drives=[DriveSpec("modules", Path("/x"), "x")])


def test_the_launcher_module_keeps_the_names_of_its_parts() -> None:
    """``ocfs2lab.vm.qemu`` was the whole launcher; its names still come from there."""
    for name in qemu.__all__:
        owner = next(m for m in (spec_mod, machine_mod, ownership) if hasattr(m, name))
        assert getattr(qemu, name) is getattr(owner, name), name
    assert {"QemuMachine", "QemuSpec", "build_argv", "reap_stale_machines"} <= set(qemu.__all__)
