"""``ocfs2lab doctor``: its parsers on output captured on this project's machine
(tests/data/doctor), the judgements that turn facts into checks, and :func:`diagnose` wired
to a scripted runner (which commands run, each with a timeout, and a tool that is absent)."""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from ocfs2lab import doctor
from ocfs2lab.doctor import (
    DRBD,
    OCFS2,
    QEMU,
    TOOLS,
    Check,
    DockerFacts,
    DoctorReport,
    KernelFacts,
    KvmFacts,
    ProbeOutcome,
    Tool,
    describe_probe,
    diagnose,
    disk_check,
    docker_check,
    extra_check,
    image_check,
    kernel_check,
    kvm_check,
    parse_df,
    parse_module_list,
    parse_proc_filesystems,
    parse_tool_version,
    tool_check,
)
from ocfs2lab.doctor import docker as doctor_docker
from ocfs2lab.doctor import kvm as doctor_kvm
from ocfs2lab.errors import ParseError, SpecError, TransportError
from ocfs2lab.runner.base import DEFAULT_TIMEOUT, CommandResult
from ocfs2lab.vm import accel
from ocfs2lab.vm.kernel import KernelBuild
from ocfs2lab.vm.recipe import ImageRecipe, LabImage
from tests.support.fake import FakeRunner, Reply

DATA = Path(__file__).resolve().parents[1] / "data" / "doctor"
DOCS = Path(__file__).resolve().parents[2] / "docs"
TOOL = {t.name: t for t in TOOLS}
GIB = 1024**3
QEMU_VERSION = "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"
DF_HEADER = "Filesystem 1024-blocks Used Available Capacity Mounted on\n"

CHECK_NAMES = [
    "qemu-system-x86_64",
    "qemu-img",
    "kvm",
    "debootstrap",
    "mkfs.ext4",
    "vde_switch",
    "ssh",
    "ssh-keygen",
    "disk-space",
    "image-cache",
    "lab-kernel",
    "docker",
    "kernel-ocfs2",
    "kernel-drbd",
    "extra-notebook",
    "extra-coverage",
]


def captured(name: str) -> tuple[str, int]:
    """A capture's text (stdout then stderr) and exit status."""
    return (DATA / f"{name}.txt").read_text(), int((DATA / f"{name}.rc").read_text())


def result_of(argv: Sequence[str], name: str, *, duration: float = 0.01) -> CommandResult:
    """The captured run as a CommandResult (all text on stdout, as the parsers read both)."""
    text, code = captured(name)
    return CommandResult(tuple(argv), code, text.encode(), b"", duration)


def gone(*argv: str) -> CommandResult:
    """What LocalRunner answers for a program it cannot find."""
    return CommandResult(argv, 127, b"", f"{argv[0]}: command not found\n".encode())


# -- parsers on captured output ------------------------------------------------------------
@pytest.mark.parametrize(
    ("tool", "capture", "version"),
    [
        ("qemu-system-x86_64", "qemu-system-x86_64.version", QEMU_VERSION),
        ("qemu-img", "qemu-img.version", QEMU_VERSION),
        ("debootstrap", "debootstrap.version", "1.0.128+nmu2+deb12u2"),
        ("mkfs.ext4", "mkfs.ext4.version", "1.47.0"),
        ("vde_switch", "vde_switch.version", "2.3.2"),
        ("ssh", "ssh.version", "9.2p1 Debian-2+deb12u10"),
    ],
)
def test_versions_from_captured_output(tool: str, capture: str, version: str) -> None:
    text, code = captured(capture)
    assert code == 0
    assert parse_tool_version(TOOL[tool], text) == version
    check = tool_check(TOOL[tool], result_of([tool, *TOOL[tool].args], capture))
    assert (check.status, check.found, check.fix) == ("ok", f"{tool} {version}", None)


def test_docker_versions_from_captured_output() -> None:
    assert parse_tool_version(doctor.DOCKER_CLI, captured("docker.version")[0]) == "28.2.2"
    assert parse_tool_version(doctor.DOCKERD, captured("dockerd.version")[0]) == "20.10.24+dfsg1"


def test_ssh_keygen_has_no_version_but_is_there() -> None:
    text, code = captured("ssh-keygen.help")
    assert code == 1 and "usage: ssh-keygen" in text
    check = tool_check(TOOL["ssh-keygen"], result_of(["ssh-keygen", "--help"], "ssh-keygen.help"))
    assert check.status == "ok"
    assert "no version option" in check.found


def test_proc_filesystems_of_this_machine_has_no_ocfs2() -> None:
    names = parse_proc_filesystems(captured("proc-filesystems")[0])
    assert {"ext4", "overlay", "proc", "sysfs", "btrfs"} <= names
    assert "nodev" not in names
    assert "ocfs2" not in names


def test_proc_filesystems_with_ocfs2_loaded() -> None:
    # How the lab VM's kernel lists them once ocfs2 and ocfs2_dlmfs are loaded (the line
    # format of fs/filesystems.c: "nodev" only for types without a device, then a tab).
    text = captured("proc-filesystems")[0] + "\tocfs2\nnodev\tocfs2_dlmfs\n"
    assert {"ocfs2", "ocfs2_dlmfs"} <= parse_proc_filesystems(text)


def test_sys_module_of_this_machine() -> None:
    modules = parse_module_list(captured("sys-module")[0])
    assert {"kvm", "overlay", "loop", "virtio_blk"} <= modules
    assert not {"ocfs2", "drbd"} & modules


def test_df_of_this_machine() -> None:
    text, code = captured("df")
    assert code == 0
    row = parse_df(text)
    assert (row.filesystem, row.mount_point) == ("/dev/vda", "/")
    assert row.available_bytes == 79234884 * 1024
    assert row.total_bytes == 264212084 * 1024
    assert row.used_bytes == 27156028 * 1024


def test_df_mount_point_with_spaces_and_other_block_sizes() -> None:
    text = (
        "Filesystem 512-blocks Used Available Capacity Mounted on\n"
        "srv:/x 2048 1024 1024 50% /mnt/my disk\n"
    )
    row = parse_df(text)
    assert (row.mount_point, row.available_bytes) == ("/mnt/my disk", 1024 * 512)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "df: /nowhere: No such file or directory\n",
        "Filesystem Size Used\n/dev/vda 1 2 3 4% /\n",
        DF_HEADER + "/dev/vda 1 2 3\n",
    ],
)
def test_df_garbage_is_a_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        parse_df(text)


def test_kvm_probe_on_this_machine_aborts() -> None:
    text, code = captured("kvm-probe")
    result = CommandResult(("qemu-system-x86_64",), code, b"", text.encode(), 0.05)
    detail = describe_probe([result], usable=False)
    assert code == -6
    assert detail.startswith("the probe guest (boot sector) died of SIGABRT after 0.05 s")
    assert detail.endswith("qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69")


def test_probe_descriptions() -> None:
    sector = CommandResult(("qemu",), accel.PROBE_EXIT_STATUS, duration=0.4)
    kernel_hung = CommandResult(("qemu",), -9, duration=15.0, timed_out=True)
    assert describe_probe([sector], usable=True) == "the probe guest ran under KVM (0.4 s)"
    assert describe_probe([sector, kernel_hung], usable=False) == (
        "the probe guest (kernel) hung and was killed after 15 s"
    )
    assert "exited with 1" in describe_probe([CommandResult(("qemu",), 1)], usable=False)


# -- judgements ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tool", "package"),
    [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("qemu-img", "qemu-utils"),
        ("debootstrap", "debootstrap"),
        ("mkfs.ext4", "e2fsprogs"),
        ("vde_switch", "vde2"),
        ("ssh", "openssh-client"),
        ("ssh-keygen", "openssh-client"),
    ],
)
def test_absent_tool_is_missing_with_its_package(tool: str, package: str) -> None:
    check = tool_check(TOOL[tool], gone(tool, *TOOL[tool].args))
    assert check.status == "missing" and check.failing
    assert check.fix == f"apt-get install {package}"
    assert check.meaning == TOOL[tool].without


def test_broken_tools_are_errors() -> None:
    hung = CommandResult(("qemu-system-x86_64", "--version"), -9, duration=10.0, timed_out=True)
    assert tool_check(QEMU, hung).status == "error"
    assert "did not answer within 10 s" in tool_check(QEMU, hung).found
    not_exec = CommandResult(("qemu-img",), 126, stderr_bytes=b"qemu-img: Permission denied")
    assert tool_check(TOOL["qemu-img"], not_exec).status == "error"
    failed = CommandResult(("qemu-system-x86_64", "--version"), 1, stderr_bytes=b"boom\n")
    check = tool_check(QEMU, failed)
    assert (check.status, check.fix) == ("error", "apt-get install --reinstall qemu-system-x86")
    assert "boom" in check.found


def test_tool_found_only_outside_path_is_a_warning() -> None:
    result = result_of(["/usr/sbin/debootstrap", "--version"], "debootstrap.version")
    check = tool_check(TOOL["debootstrap"], result, path="/usr/sbin/debootstrap")
    assert check.status == "warn"
    assert "at /usr/sbin/debootstrap, which is not on PATH" in check.found
    assert check.fix is not None and "/usr/sbin" in check.fix


def test_unrecognised_version_is_still_there() -> None:
    weird = CommandResult(("vde_switch", "--version"), 0, b"something else\n")
    check = tool_check(TOOL["vde_switch"], weird)
    assert check.status == "ok" and "not recognised" in check.found


def kvm(
    *,
    present: bool = True,
    accessible: bool = True,
    override: str | None = None,
    qemu: bool = True,
    probe: bool | None = None,
) -> Check:
    outcome = None if probe is None else ProbeOutcome(probe, "DETAIL")
    return kvm_check(KvmFacts(present, accessible, override, qemu, outcome))


def test_kvm_judgements() -> None:
    usable = kvm(probe=True)
    assert (usable.status, usable.found, usable.fix) == ("ok", "KVM: DETAIL", None)

    nested = kvm(probe=False)  # this machine: /dev/kvm opens, the probe guest aborts
    assert nested.status == "warn"
    assert nested.found == "TCG: /dev/kvm is usable, but DETAIL"
    assert nested.meaning.startswith(doctor.TCG_MEANING)
    assert "~5x slower" in nested.meaning

    no_device = kvm(present=False, accessible=False)
    assert (no_device.status, no_device.found) == ("warn", "TCG: /dev/kvm is missing")
    assert no_device.fix is not None and "modprobe kvm_intel" in no_device.fix

    no_access = kvm(accessible=False)
    assert no_access.status == "warn"
    assert no_access.fix is not None and "kvm group" in no_access.fix

    no_qemu = kvm(qemu=False)
    assert no_qemu.status == "warn" and "not probed" in no_qemu.found


def test_kvm_override() -> None:
    tcg = kvm(override="tcg")
    assert tcg.status == "warn" and "forced by OCFS2LAB_ACCEL=tcg" in tcg.found
    assert tcg.meaning == doctor.TCG_MEANING

    forced_ok = kvm(override="KVM", probe=True)
    assert forced_ok.status == "ok" and "forced by OCFS2LAB_ACCEL=kvm" in forced_ok.found

    forced_bad = kvm(override="kvm", probe=False)
    assert forced_bad.status == "warn" and "although DETAIL" in forced_bad.found

    forced_no_device = kvm(override="kvm", present=False, accessible=False)
    assert forced_no_device.status == "error"

    bogus = kvm(override="fast")
    assert bogus.status == "error" and "'fast' is neither kvm nor tcg" in bogus.found


@pytest.mark.parametrize(
    ("free", "status"),
    [
        (80 * GIB, "ok"),
        (4 * GIB, "ok"),
        (4 * GIB - 1, "warn"),
        (2 * GIB, "warn"),
        (2 * GIB - 1, "missing"),
    ],
)
def test_disk_thresholds(free: int, status: str) -> None:
    cache = Path("/var/cache/lab")
    check = disk_check(cache, cache, free)
    assert check.status == status
    assert check.found.startswith(f"{free / GIB:.1f} GiB free")
    assert (check.fix is None) == (status == "ok")


def test_disk_measured_at_a_parent() -> None:
    check = disk_check(Path("/srv/a/b"), Path("/srv"), 10 * GIB)
    assert "not created yet; measured at /srv" in check.found


def test_kernel_of_this_machine_is_a_warning() -> None:
    release = captured("uname")[0].strip()
    fs = parse_proc_filesystems(captured("proc-filesystems")[0])
    mods = parse_module_list(captured("sys-module")[0])
    for feature, capture in ((OCFS2, "modprobe-n-ocfs2"), (DRBD, "modprobe-n-drbd")):
        modprobe = result_of(["modprobe", "-n", "-v", feature.name], capture)
        check = kernel_check(feature, KernelFacts(release, fs, mods, modprobe))
        assert check.status == "warn"
        assert f"no {feature.label} in kernel 6.18.44-fc-v657" in check.found
        assert f"Module {feature.name} not found" in check.found
        assert "lab VM (the default) brings its own kernel" in check.meaning
        assert check.fix is not None and "modprobe" in check.fix


def test_kernel_with_the_feature() -> None:
    no_modprobe = gone("modprobe", "-n", "-v", "ocfs2")
    loadable = CommandResult(("modprobe",), 0, b"insmod /lib/modules/6.12/ocfs2.ko\n")
    fs = frozenset({"ext4", "ocfs2"})
    assert kernel_check(OCFS2, KernelFacts("6.12", fs, None, no_modprobe)).status == "ok"
    loaded = KernelFacts("6.12", None, frozenset({"drbd"}), no_modprobe)
    assert kernel_check(DRBD, loaded).status == "ok"
    available = kernel_check(OCFS2, KernelFacts("6.12", frozenset(), frozenset(), loadable))
    assert available.status == "ok" and "available, not loaded" in available.found
    absent = kernel_check(DRBD, KernelFacts("6.12", frozenset(), frozenset(), no_modprobe))
    assert absent.status == "warn" and "modprobe (kmod) is not installed" in absent.found


def test_extras() -> None:
    ok = extra_check("notebook", {"pandas": "2.2", "matplotlib": "3.9"})
    assert (ok.status, ok.found) == ("ok", "pandas 2.2, matplotlib 3.9")
    partial = extra_check("notebook", {"pandas": None, "matplotlib": "3.9"})
    assert partial.status == "warn"
    assert partial.found == "not installed: pandas; installed: matplotlib 3.9"
    assert partial.fix == "pip install 'ocfs2lab[notebook]'"
    assert extra_check("coverage", {"gcovr": None}).fix == "pip install 'ocfs2lab[coverage]'"


def test_image_cache() -> None:
    recipe = ImageRecipe()
    images = Path("/c/images")
    absent = image_check(recipe, images, None, others=["bookworm-0123456789abcdef"])
    assert absent.status == "warn"
    assert str(images / recipe.short_name) in absent.found
    assert "other images there: bookworm-0123456789abcdef" in absent.found
    assert absent.fix == "ocfs2lab image build (as root)"
    image = LabImage.in_directory(images / recipe.short_name, recipe)
    present = image_check(recipe, images, image, {"kernel_version": "6.12.117", "built_at": "T"})
    assert present.status == "ok"
    assert present.found.endswith(f"{image.directory} (kernel 6.12.117, built T)")


def test_docker() -> None:
    cli = result_of(["docker", "--version"], "docker.version")
    daemon = result_of(["dockerd", "--version"], "dockerd.version")
    up = docker_check(DockerFacts(cli, daemon, "20.10.24", None))
    assert up.status == "ok" and up.found.startswith("engine 20.10.24 answers")
    down = docker_check(DockerFacts(cli, daemon, None, "no socket"))
    assert down.status == "warn"
    assert "no engine answers at unix:///var/run/docker.sock (no socket)" in down.found
    assert "docker CLI 28.2.2, dockerd 20.10.24+dfsg1" in down.found
    assert "inside the lab VM" in down.meaning
    assert down.fix is not None and "systemctl start docker" in down.fix
    none = docker_check(DockerFacts(gone("docker"), gone("dockerd"), None, "no socket"))
    assert none.status == "warn" and "no docker CLI, no dockerd" in none.found
    assert none.fix is not None and none.fix.startswith("apt-get install docker.io")


FIX = "apt-get install c"


def test_report() -> None:
    good = Check("a", "ok", "f", "m")
    report = DoctorReport([good, Check("b", "warn", "f", "m", "x")])
    assert report.ok and report.failing == ()
    bad = DoctorReport([good, Check("c", "missing", "f", "m", FIX)])
    assert not bad.ok and [c.name for c in bad.failing] == ["c"]
    assert bad.check("c").fix == FIX
    with pytest.raises(KeyError):
        bad.check("nope")
    data = json.loads(json.dumps(bad.to_json()))
    assert data == {
        "ok": False,
        "checks": [
            {"name": "a", "status": "ok", "found": "f", "meaning": "m", "fix": None},
            {"name": "c", "status": "missing", "found": "f", "meaning": "m", "fix": FIX},
        ],
    }
    assert not DoctorReport([Check("e", "error", "f", "m")]).ok
    with pytest.raises(SpecError):
        Check("a", "fine", "f", "m")  # type: ignore[arg-type]


# -- diagnose with a scripted runner -------------------------------------------------------
class TimedFake(FakeRunner):
    """A FakeRunner that also records each call's timeout."""

    def __init__(self, rules: Sequence[tuple[str, Reply]] = ()) -> None:
        super().__init__(rules)
        self.timeouts: list[float] = []

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        input: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        self.timeouts.append(timeout)
        return super().run(argv, check=check, timeout=timeout, input=input, env=env)


def reply(capture: str) -> tuple[int, str]:
    text, code = captured(capture)
    return code, text


def machine(*first: tuple[str, Reply]) -> TimedFake:
    """This project's machine, from the captures, except that KVM works (the probe guests
    exit as they should); ``first`` rules override."""
    return TimedFake(machine_rules(*first))


def machine_rules(*first: tuple[str, Reply]) -> list[tuple[str, Reply]]:
    """The rules of :func:`machine`."""
    return [
        *first,
        (r"^qemu-system-x86_64 --version$", reply("qemu-system-x86_64.version")),
        (r"^qemu-system-x86_64 .*-kernel ", (0, "[    1.2] Kernel panic - not syncing: VFS\n")),
        (r"^qemu-system-x86_64 .*-accel kvm", (accel.PROBE_EXIT_STATUS, "K")),
        (r"^qemu-img --version$", reply("qemu-img.version")),
        (r"^debootstrap --version$", reply("debootstrap.version")),
        (r"^mkfs.ext4 -V$", reply("mkfs.ext4.version")),
        (r"^vde_switch --version$", reply("vde_switch.version")),
        (r"^ssh -V$", reply("ssh.version")),
        (r"^ssh-keygen --help$", reply("ssh-keygen.help")),
        (r"^docker --version$", reply("docker.version")),
        (r"^dockerd --version$", reply("dockerd.version")),
        (r"^df -P -k -- ", reply("df")),
        (r"^uname -r$", reply("uname")),
        (r"^cat /proc/filesystems$", reply("proc-filesystems")),
        (r"^ls -1 /sys/module$", reply("sys-module")),
        (r"^modprobe -n -v ocfs2$", reply("modprobe-n-ocfs2")),
        (r"^modprobe -n -v drbd$", reply("modprobe-n-drbd")),
        (r".", (127, "")),  # anything else is not installed
    ]


@pytest.fixture
def usable_kvm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A /dev/kvm that exists and opens, whatever the machine running the tests has."""
    device = tmp_path / "kvm"
    device.touch()
    monkeypatch.setattr(doctor_kvm, "KVM_DEVICE", str(device))
    monkeypatch.setattr(accel, "kvm_device_usable", lambda path="/dev/kvm": True)
    monkeypatch.delenv(accel.ACCEL_ENV, raising=False)
    monkeypatch.setattr(doctor_docker, "ping_docker", lambda timeout=3.0: (None, "no socket"))


def fake_image(cache: Path) -> LabImage:
    """Files laid out as a finished build leaves them (nothing is built)."""
    recipe = ImageRecipe()
    directory = cache / "images" / recipe.short_name
    directory.mkdir(parents=True)
    (directory / "root.img").write_bytes(b"")
    manifest = {"key": recipe.key(), "kernel": "lab", "built_at": "T"}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    assert recipe.kernel is not None
    kernel_dir = cache / "kernels" / recipe.kernel.short_name()
    release = "6.12.117-ocfs2lab"
    (kernel_dir / "modules" / "lib" / "modules" / release).mkdir(parents=True)
    for name in ("bzImage", "modules.img"):
        (kernel_dir / name).write_bytes(b"")
    kernel_manifest = {
        "key": recipe.kernel.key(),
        "release": release,
        "build_root": "/b/linux",
        "gcc_version": "12.2.0",
        "gcov_dirs": ["fs/ocfs2"],
    }
    (kernel_dir / "manifest.json").write_text(json.dumps(kernel_manifest))
    kernel = KernelBuild.load(kernel_dir)
    assert kernel is not None
    return LabImage.in_directory(directory, recipe).with_kernel(kernel.bzimage, kernel.modules_disk)


def test_diagnose_runs_each_check_through_the_runner(usable_kvm: None, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    fake = machine()
    report = diagnose(fake, cache_dir=cache)

    assert [c.name for c in report.checks] == CHECK_NAMES
    lines = fake.lines()
    for expected in (
        "qemu-system-x86_64 --version",
        "qemu-img --version",
        "debootstrap --version",
        "mkfs.ext4 -V",
        "vde_switch --version",
        "ssh -V",
        "ssh-keygen --help",
        f"df -P -k -- {cache}",
        "uname -r",
        "cat /proc/filesystems",
        "ls -1 /sys/module",
        "modprobe -n -v ocfs2",
        "modprobe -n -v drbd",
        "docker --version",
        "dockerd --version",
    ):
        assert expected in lines
    probes = [c for c in fake.calls if c[0] == "qemu-system-x86_64" and "-accel" in c]
    assert len(probes) == 1 and probes[0][probes[0].index("-accel") + 1] == "kvm"
    # Every call has its own short timeout (not the runner's default).
    assert set(fake.timeouts) <= {doctor.TOOL_TIMEOUT, accel.PROBE_TIMEOUT}
    assert len(fake.timeouts) == len(fake.calls)

    status = {c.name: c.status for c in report.checks}
    assert status["kvm"] == "ok"
    assert report.check("kvm").found.startswith("KVM: the probe guest ran under KVM")
    assert status["image-cache"] == "warn"  # empty cache
    assert (status["kernel-ocfs2"], status["kernel-drbd"], status["docker"]) == ("warn",) * 3
    assert status["disk-space"] == "ok"  # 75.6 GiB in the capture
    for name in CHECK_NAMES[:8]:
        assert status[name] == "ok", report.check(name)
    assert report.ok


def test_diagnose_probes_with_the_cached_image_kernel(usable_kvm: None, tmp_path: Path) -> None:
    image = fake_image(tmp_path)
    fake = machine()
    report = diagnose(fake, cache_dir=tmp_path)
    assert report.check("image-cache").status == "ok"
    assert str(image.directory) in report.check("image-cache").found
    kernel_probes = [c for c in fake.calls if "-kernel" in c]
    assert len(kernel_probes) == 1 and str(image.kernel) in kernel_probes[0]
    assert "boot sector, kernel" in report.check("kvm").found


def test_absent_qemu_is_missing_and_kvm_is_not_probed(usable_kvm: None, tmp_path: Path) -> None:
    fake = machine((r"qemu-system-x86_64", (127, "")))
    report = diagnose(fake, cache_dir=tmp_path)
    qemu = report.check("qemu-system-x86_64")
    assert (qemu.status, qemu.fix) == ("missing", "apt-get install qemu-system-x86")
    assert "not probed" in report.check("kvm").found
    assert not any("-accel" in c for c in fake.calls)
    assert not report.ok
    assert [c.name for c in report.failing] == ["qemu-system-x86_64"]


def test_tool_only_in_sbin(usable_kvm: None, tmp_path: Path) -> None:
    fake = machine(
        (r"^debootstrap ", (127, "")),
        (r"^/usr/sbin/debootstrap --version$", reply("debootstrap.version")),
    )
    check = diagnose(fake, cache_dir=tmp_path).check("debootstrap")
    assert check.status == "warn"
    assert check.found == (
        "debootstrap 1.0.128+nmu2+deb12u2, at /usr/sbin/debootstrap, which is not on PATH"
    )


def test_forced_tcg_does_not_probe(
    usable_kvm: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(accel.ACCEL_ENV, "tcg")
    fake = machine()
    check = diagnose(fake, cache_dir=tmp_path).check("kvm")
    assert check.status == "warn" and "forced by OCFS2LAB_ACCEL=tcg" in check.found
    assert not any("-accel" in c for c in fake.calls)


def test_unreadable_df_is_an_error_not_an_exception(usable_kvm: None, tmp_path: Path) -> None:
    report = diagnose(machine((r"^df ", (0, "nonsense\n"))), cache_dir=tmp_path)
    check = report.check("disk-space")
    assert check.status == "error" and "cannot parse df -P" in check.found
    assert not report.ok


def test_low_disk_is_missing(usable_kvm: None, tmp_path: Path) -> None:
    df = DF_HEADER + "/dev/vda 10485760 9437184 1048576 90% /\n"
    report = diagnose(machine((r"^df ", (0, df))), cache_dir=tmp_path / "not" / "yet")
    check = report.check("disk-space")
    assert check.status == "missing"
    assert check.found.startswith("1.0 GiB free for the image cache")
    assert f"measured at {tmp_path}" in check.found
    assert not report.ok


def test_tool_records() -> None:
    # Tools are frozen attrs with a version pattern or a presence-only check.
    assert all(isinstance(t, Tool) and (t.version is not None or t.any_exit) for t in TOOLS)


class Unreachable(TimedFake):
    """A runner whose machine cannot be reached for some commands."""

    def __init__(self, pattern: str) -> None:
        super().__init__(machine_rules())
        self.pattern = re.compile(pattern)

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        input: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        if self.pattern.search(" ".join(argv)):
            raise TransportError("connection refused")
        return super().run(argv, check=check, timeout=timeout, input=input, env=env)


def test_a_failing_runner_gives_error_checks_not_an_exception(
    usable_kvm: None, tmp_path: Path
) -> None:
    report = diagnose(Unreachable(r"^(ssh -V|uname|dockerd)"), cache_dir=tmp_path)
    assert [c.name for c in report.checks] == CHECK_NAMES
    failed = {c.name: c.found for c in report.failing}
    assert failed == {
        name: "could not check: connection refused"
        for name in ("ssh", "docker", "kernel-ocfs2", "kernel-drbd")
    }
    assert report.check("qemu-system-x86_64").status == "ok"


def test_lab_kernel_check_says_what_a_first_run_costs() -> None:
    recipe = ImageRecipe().kernel
    assert recipe is not None
    built = doctor.lab_kernel_check(
        recipe,
        KernelBuild(Path("/c/k"), "6.12.117-ocfs2lab", "/b/linux", "12.2.0", ("fs/ocfs2",)),
        [],
    )
    assert built.status == "ok" and "6.12.117-ocfs2lab" in built.found
    todo = doctor.lab_kernel_check(recipe, None, [])
    assert todo.status == "warn" and "docs/facts.md, First run" in todo.meaning
    assert (DOCS / "facts.md").read_text().count("\n## First run\n") == 1  # what it points to
    lacking = doctor.lab_kernel_check(recipe, None, ["bison", "flex"])
    assert lacking.status == "missing" and lacking.fix == "apt-get install bison flex"
    assert doctor.lab_kernel_check(None, None, []).status == "ok"


def test_the_package_exports_every_family_s_names() -> None:
    """Each name of ``ocfs2lab.doctor`` is the object its family's module defines."""
    for name in doctor.__all__:
        obj = getattr(doctor, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__.startswith("ocfs2lab.doctor."), name
            assert getattr(importlib.import_module(obj.__module__), name) is obj, name
    assert doctor.diagnose.__module__ == "ocfs2lab.doctor.diagnosis"
    assert doctor_kvm.KVM_DEVICE == doctor.KVM_DEVICE == "/dev/kvm"
    assert doctor_docker.ping_docker is doctor.ping_docker
