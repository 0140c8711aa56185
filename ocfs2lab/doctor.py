"""``ocfs2lab doctor``: what this machine has for the lab, what it lacks, and what each gap means.

[`diagnose`][ocfs2lab.doctor.diagnose] looks at every piece the lab uses on this machine and returns
a [`DoctorReport`][ocfs2lab.doctor.DoctorReport], one [`Check`][ocfs2lab.doctor.Check] per piece:
QEMU and qemu-img, whether KVM really works (the probe of [`ocfs2lab.vm.accel`][ocfs2lab.vm.accel])
or TCG is used, the image build tools, the VM interconnect (vde2), ssh, free space and the cached
lab image, Docker, the host kernel's OCFS2 and DRBD, and the optional Python extras. A missing piece
is reported, never raised.

Each check has a status: ``ok``; ``warn`` (works, or is not needed by default, but worth
knowing: TCG instead of KVM, no OCFS2 in this machine's own kernel); ``missing`` (a piece the
lab needs is absent); ``error`` (present but broken, or could not be checked). A report is
``ok`` when no check is ``missing`` or ``error``.

Programs run through a [`Runner`][ocfs2lab.runner.base.Runner] (each call with a timeout);
what they print is read by the pure functions here
([`parse_tool_version`][ocfs2lab.doctor.parse_tool_version], [`parse_df`][ocfs2lab.doctor.parse_df],
[`parse_proc_filesystems`][ocfs2lab.doctor.parse_proc_filesystems], ...) and judged by pure
functions that turn facts into checks ([`tool_check`][ocfs2lab.doctor.tool_check],
[`kvm_check`][ocfs2lab.doctor.kvm_check], [`disk_check`][ocfs2lab.doctor.disk_check], ...).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import re
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal

import attrs
import docker as docker_sdk
from attrs import field, frozen

from ocfs2lab.errors import Ocfs2LabError, ParseError, SpecError
from ocfs2lab.runner.base import DEFAULT_TIMEOUT, CommandResult, Runner
from ocfs2lab.runner.local import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, LocalRunner
from ocfs2lab.vm import accel
from ocfs2lab.vm.image import find_image, images_dir, read_manifest
from ocfs2lab.vm.kernel import KernelBuild, find_kernel, kernel_build_missing
from ocfs2lab.vm.recipe import ImageRecipe, KernelRecipe, LabImage, cache_root

log = logging.getLogger(__name__)

Status = Literal["ok", "warn", "missing", "error"]
#: Every status, from good to bad.
STATUSES: tuple[Status, ...] = ("ok", "warn", "missing", "error")
#: Statuses that make a report (and ``ocfs2lab doctor``) fail.
FAILING: frozenset[str] = frozenset({"missing", "error"})

#: Seconds each program gets to say its version (or anything else doctor asks).
TOOL_TIMEOUT = 10.0
#: Seconds the Docker engine gets to answer a ping.
DOCKER_TIMEOUT = 3.0
#: Where the docker SDK looks for the engine when ``$DOCKER_HOST`` is unset.
DEFAULT_DOCKER_ENDPOINT = "unix:///var/run/docker.sock"
GIB = 1024**3
#: Free space at the image cache below which the disk check warns / reports ``missing``. The
#: image takes about 1.2 GB on disk (an 8 GiB sparse file); each VM's overlay grows from there.
DISK_WARN_BYTES = 4 * GIB
DISK_MISSING_BYTES = 2 * GIB
#: Where Debian installs administrator programs; a non-root user's PATH often lacks them.
SBIN_DIRS = ("/usr/sbin", "/sbin")
KVM_DEVICE = "/dev/kvm"
TCG_MEANING = (
    "guests run under software emulation (TCG), ~5x slower: boots and tests take longer, "
    "nothing else changes"
)
#: Optional extras of the package and the distributions each installs (as in pyproject.toml).
EXTRAS: dict[str, tuple[str, ...]] = {
    "notebook": ("pandas", "matplotlib", "ipykernel", "nbclient", "nbformat", "jupyterlab"),
    "coverage": ("gcovr",),
}
EXTRA_MEANINGS: dict[str, str] = {
    "notebook": "Timeline.to_dataframe() and plots (pandas, matplotlib), running notebooks "
    "and opening them (jupyter lab)",
    "coverage": "coverage reports of the lab kernel's gcov data (gcovr)",
}


# -- the report ------------------------------------------------------------------------------
def _check_status(_inst: object, _attr: object, value: str) -> None:
    if value not in STATUSES:
        raise SpecError("check.status", value, f"must be one of {', '.join(STATUSES)}")


@frozen
class Check:
    """One piece doctor looked at, and what it found.

    Attributes:
        name: Short stable name (``qemu-system-x86_64``, ``kvm``, ``disk-space``, ...).
        status: ``ok``, ``warn``, ``missing`` or ``error`` (see the module's description).
        found: What was found, in words (versions, paths, sizes, error messages).
        meaning: What that means for the lab.
        fix: How to get or repair the piece (a Debian package, a pip extra, a command);
            ``None`` when there is nothing to do.

    Raises:
        SpecError: ``status`` is not one of `STATUSES`.
    """

    name: str
    status: Status = field(validator=_check_status)
    found: str
    meaning: str
    fix: str | None = None

    @property
    def failing(self) -> bool:
        """True for ``missing`` and ``error``."""
        return self.status in FAILING


def _checks(value: Iterable[Check]) -> tuple[Check, ...]:
    return tuple(value)


@frozen
class DoctorReport:
    """Every check of one [`diagnose`][ocfs2lab.doctor.diagnose] run, in a fixed order.

    Attributes:
        checks: The checks.
    """

    checks: tuple[Check, ...] = field(converter=_checks)

    @property
    def ok(self) -> bool:
        """True when no check is ``missing`` or ``error`` (warnings are fine)."""
        return not any(c.failing for c in self.checks)

    @property
    def failing(self) -> tuple[Check, ...]:
        """The checks that are ``missing`` or ``error``."""
        return tuple(c for c in self.checks if c.failing)

    def check(self, name: str) -> Check:
        """The check called ``name``.

        Raises:
            KeyError: There is no such check.
        """
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """The report as plain data: ``{"ok": bool, "checks": [{name, status, found,
        meaning, fix}, ...]}``."""
        return {"ok": self.ok, "checks": [attrs.asdict(c) for c in self.checks]}


# -- programs --------------------------------------------------------------------------------
@frozen
class Tool:
    """A program the lab runs on this machine and how doctor asks it for its version.

    Attributes:
        name: The program, run by name (as the library runs it).
        args: Arguments that make it print its version (or anything, for a presence check).
        version: Regular expression over stdout + stderr whose first group is the version
            shown; ``None`` when the program has no version option (presence only).
        package: The Debian package that installs it.
        role: What the lab uses it for.
        without: What cannot work without it.
        any_exit: A non-zero exit still means the program is there (``ssh-keygen --help``).
    """

    name: str
    args: tuple[str, ...]
    version: str | None
    package: str
    role: str
    without: str
    any_exit: bool = False


QEMU = Tool(
    "qemu-system-x86_64",
    ("--version",),
    r"QEMU emulator version (.+)",
    "qemu-system-x86",
    "boots the lab VM (the default host) and VM nodes",
    "no lab VM can boot: everything that needs OCFS2 or DRBD runs inside one",
)
TOOLS: tuple[Tool, ...] = (
    QEMU,
    Tool(
        "qemu-img",
        ("--version",),
        r"qemu-img version (.+)",
        "qemu-utils",
        "makes each VM's copy-on-write overlay over the cached image",
        "no VM can start: each boots from a qcow2 overlay made by qemu-img",
    ),
    Tool(
        "debootstrap",
        ("--version",),
        r"debootstrap (\S+)",
        "debootstrap",
        "builds the lab image's Debian root file system",
        "the lab image cannot be built (a cached image still boots)",
    ),
    Tool(
        "mkfs.ext4",
        ("-V",),
        r"mke2fs (\S+)",
        "e2fsprogs",
        "makes the lab image's root file system (mkfs.ext4 -d) and checks it (e2fsck)",
        "the lab image cannot be built (a cached image still boots)",
    ),
    Tool(
        "vde_switch",
        ("--version",),
        r"VDE (\S+)",
        "vde2",
        "the interconnect between VM nodes (one kernel per node)",
        "clusters of VM nodes, the ones for node-death experiments, have no interconnect "
        "(the lab VM with container nodes does not need it)",
    ),
    Tool(
        "ssh",
        ("-V",),
        r"OpenSSH_([^,\n]+)",
        "openssh-client",
        "carries every command to the lab VM, VM nodes and --ssh hosts",
        "the library cannot reach the lab VM, VM nodes or --ssh hosts",
    ),
    Tool(
        "ssh-keygen",
        ("--help",),
        None,
        "openssh-client",
        "makes each VM's fresh ed25519 key",
        "no VM can start: each gets its own key from ssh-keygen",
        any_exit=True,
    ),
)
DOCKER_CLI = Tool(
    "docker",
    ("--version",),
    r"Docker version ([^,\s]+)",
    "docker.io",
    "the Docker command line",
    "",
)
DOCKERD = Tool(
    "dockerd",
    ("--version",),
    r"Docker version ([^,\s]+)",
    "docker.io",
    "the Docker engine",
    "",
)


def parse_tool_version(tool: Tool, text: str) -> str | None:
    """The version ``tool`` printed in ``text`` (its stdout + stderr), or ``None``.

    >>> parse_tool_version(QEMU, "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7)\\n")
    '7.2.22 (Debian 1:7.2+dfsg-7)'
    """
    if tool.version is None:
        return None
    match = re.search(tool.version, text)
    return match.group(1).strip() if match else None


def _first_line(text: str, limit: int = 200) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:limit] if lines else ""


def _reinstall(package: str) -> str:
    return f"apt-get install --reinstall {package}"


def tool_check(tool: Tool, result: CommandResult, *, path: str | None = None) -> Check:
    """Judge ``tool`` from the result of running it with ``tool.args``.

    Args:
        tool: The program.
        result: What running it gave (exit status 127: not found, 126: not executable).
        path: Where it was found instead when not on PATH (``/usr/sbin/debootstrap``).
    """
    name = tool.name
    text = result.stdout + result.stderr
    if result.timed_out:
        return Check(
            name,
            "error",
            f"`{result.command_line}` did not answer within {result.duration:.0f} s",
            f"{name} is installed but hangs: {tool.without}",
            _reinstall(tool.package),
        )
    if result.exit_code == EXIT_NOT_FOUND:
        return Check(
            name,
            "missing",
            f"{name} is not installed (not on PATH nor in {', '.join(SBIN_DIRS)})",
            tool.without,
            f"apt-get install {tool.package}",
        )
    if result.exit_code == EXIT_NOT_EXECUTABLE:
        return Check(
            name,
            "error",
            f"{name} cannot be executed: {_first_line(text)}",
            tool.without,
            _reinstall(tool.package),
        )
    if result.exit_code != 0 and not tool.any_exit:
        return Check(
            name,
            "error",
            f"`{result.command_line}` exited with {result.exit_code}: {_first_line(text)}",
            f"{name} is installed but does not run: {tool.without}",
            _reinstall(tool.package),
        )
    version = parse_tool_version(tool, text)
    if version is not None:
        found = f"{name} {version}"
    elif tool.version is None:
        found = f"{name} is installed (it has no version option)"
    else:
        found = f"{name} is installed (version not recognised: {_first_line(text)!r})"
    if path is not None:
        return Check(
            name,
            "warn",
            f"{found}, at {path}, which is not on PATH",
            f"the library runs {name} by name, so it fails for this user: {tool.without}",
            f"run the lab as root (root's PATH has {os.path.dirname(path)}; image builds "
            f"need root anyway), or add {os.path.dirname(path)} to PATH",
        )
    return Check(name, "ok", found, tool.role)


def run_program(
    runner: Runner, argv: Sequence[str], *, timeout: float = TOOL_TIMEOUT
) -> tuple[CommandResult, str | None]:
    """Run ``argv`` (a failing command is a result, not an exception); when its program is
    not on PATH, try it in `SBIN_DIRS`.

    Returns:
        The result, and the path the program was found at when that was not through PATH.
    """
    result = runner.run(list(argv), check=False, timeout=timeout)
    if result.exit_code != EXIT_NOT_FOUND or result.timed_out or "/" in argv[0]:
        return result, None
    for directory in SBIN_DIRS:
        path = f"{directory}/{argv[0]}"
        other = runner.run([path, *argv[1:]], check=False, timeout=timeout)
        if other.exit_code != EXIT_NOT_FOUND or other.timed_out:
            return other, path
    return result, None


def _probe_tool(runner: Runner, tool: Tool) -> list[Check]:
    result, path = run_program(runner, [tool.name, *tool.args])
    return [tool_check(tool, result, path=path)]


# -- KVM -------------------------------------------------------------------------------------
@frozen
class ProbeOutcome:
    """What the KVM probe guests did.

    Attributes:
        usable: True when each probe guest exited as expected in time.
        detail: What happened, in words (exit, signal, time, QEMU's first error line).
    """

    usable: bool
    detail: str


@frozen
class KvmFacts:
    """What doctor learned about KVM on this machine.

    Attributes:
        device_present: ``/dev/kvm`` exists.
        device_accessible: This process may open it read-write.
        override: The raw value of ``$OCFS2LAB_ACCEL`` (``None`` when unset).
        qemu_present: ``qemu-system-x86_64`` runs.
        probe: What the probe guests did; ``None`` when they were not run (no usable
            device, no QEMU, or TCG forced).
    """

    device_present: bool
    device_accessible: bool
    override: str | None
    qemu_present: bool
    probe: ProbeOutcome | None = None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_probe(results: Sequence[CommandResult], usable: bool) -> str:
    """Say what the probe guests (QEMU runs) did, from their results in order.

    >>> describe_probe([CommandResult(("qemu",), 85, duration=0.4)], True)
    'the probe guest ran under KVM (0.4 s)'
    """
    if not results:
        return "no probe guest ran"
    total = sum(r.duration for r in results)
    if usable:
        what = "the probe guest" if len(results) == 1 else "the probe guests (boot sector, kernel)"
        return f"{what} ran under KVM ({total:.1f} s)"
    last = results[-1]
    stage = "boot sector" if len(results) == 1 else "kernel"
    if last.timed_out:
        how = f"hung and was killed after {last.duration:.0f} s"
    elif last.exit_code < 0:
        how = f"died of {_signal_name(-last.exit_code)} after {last.duration:.2f} s"
    else:
        how = f"exited with {last.exit_code} after {last.duration:.2f} s"
    message = _first_line(last.stderr)
    return f"the probe guest ({stage}) {how}" + (f": {message}" if message else "")


def _override(raw: str | None) -> accel.Accel | None:
    """The forced accelerator, ``None`` when unset.

    Raises:
        SpecError: ``raw`` is neither ``kvm`` nor ``tcg``.
    """
    if raw is None or not raw.strip():
        return None
    return accel.choose_accel(raw, lambda: False)


def _device_words(facts: KvmFacts) -> str:
    if not facts.device_present:
        return f"{KVM_DEVICE} is missing"
    if not facts.device_accessible:
        return f"{KVM_DEVICE} exists but this user cannot open it read-write"
    return f"{KVM_DEVICE} is usable"


def _device_fix(facts: KvmFacts) -> str:
    if not facts.device_present:
        return (
            "load KVM (`modprobe kvm_intel` or `modprobe kvm_amd`) with virtualisation "
            "enabled in the firmware; in a VM, enable nested virtualisation"
        )
    return "add the user to the kvm group (`adduser $USER kvm`, then log in again)"


def kvm_check(facts: KvmFacts) -> Check:
    """Judge KVM: which accelerator lab machines get, and why.

    ``$OCFS2LAB_ACCEL`` wins (as in
    [`ocfs2lab.vm.accel.default_accel`][ocfs2lab.vm.accel.default_accel]); without it KVM is used
    only when the probe guests ran under it, TCG otherwise (a warning, not an error: TCG works,
    slower).
    """
    env = accel.ACCEL_ENV
    try:
        forced = _override(facts.override)
    except SpecError:
        return Check(
            "kvm",
            "error",
            f"{env}={facts.override!r} is neither kvm nor tcg",
            "no lab machine can start until it is fixed",
            f"set {env}=kvm or {env}=tcg, or unset it",
        )
    device = _device_words(facts)
    probe = facts.probe
    if forced == "tcg":
        return Check(
            "kvm",
            "warn",
            f"TCG, forced by {env}=tcg ({device})",
            TCG_MEANING,
            f"unset {env} to use KVM where it works"
            if facts.device_accessible
            else _device_fix(facts),
        )
    if forced == "kvm":
        if not facts.device_accessible:
            return Check(
                "kvm",
                "error",
                f"KVM, forced by {env}=kvm, but {device}",
                "QEMU cannot start any lab machine",
                f"unset {env} (TCG is used then), or {_device_fix(facts)}",
            )
        if probe is None:
            return Check(
                "kvm",
                "warn",
                f"KVM, forced by {env}=kvm; not probed: {QEMU.name} is missing",
                "whether KVM works here is unknown",
                f"apt-get install {QEMU.package}",
            )
        if probe.usable:
            return Check(
                "kvm", "ok", f"KVM, forced by {env}=kvm; {probe.detail}", "guests run at full speed"
            )
        return Check(
            "kvm",
            "warn",
            f"KVM, forced by {env}=kvm, although {probe.detail}",
            "lab machines start under KVM anyway and may abort or hang at boot",
            f"unset {env} to use TCG",
        )
    if not facts.device_accessible:
        return Check("kvm", "warn", f"TCG: {device}", TCG_MEANING, _device_fix(facts))
    if probe is None:
        return Check(
            "kvm",
            "warn",
            f"{device}; not probed: {QEMU.name} is missing",
            "whether lab machines would get KVM or TCG is unknown",
            f"apt-get install {QEMU.package}",
        )
    if probe.usable:
        return Check("kvm", "ok", f"KVM: {probe.detail}", "guests run at full speed")
    return Check(
        "kvm",
        "warn",
        f"TCG: {device}, but {probe.detail}",
        f"{TCG_MEANING} (KVM that aborts or hangs, as nested KVM can, is not used)",
        f"nothing needed, TCG works; on a real host look for KVM errors in the kernel log; "
        f"{env}=kvm forces KVM",
    )


class _RecordingRunner:
    """Passes commands to another runner and keeps every result (the probe's details)."""

    def __init__(self, inner: Runner) -> None:
        self.inner = inner
        self.results: list[CommandResult] = []

    @property
    def where(self) -> str:
        return self.inner.where

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        input: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        result = self.inner.run(argv, check=False, timeout=timeout, input=input, env=env)
        self.results.append(result)
        return result.check(timeout=timeout) if check else result

    def close(self) -> None:
        """The inner runner belongs to the caller."""


def gather_kvm(runner: Runner, *, qemu_present: bool, kernel: Path | None = None) -> KvmFacts:
    """Look at ``/dev/kvm`` and ``$OCFS2LAB_ACCEL`` and, when KVM could be used, boot the
    probe guests of [`ocfs2lab.vm.accel.probe_kvm`][ocfs2lab.vm.accel.probe_kvm] (``kernel``: the
    lab image's, as lab machines probe).
    """
    raw = os.environ.get(accel.ACCEL_ENV)
    present = os.path.exists(KVM_DEVICE)
    accessible = accel.kvm_device_usable(KVM_DEVICE)
    facts = KvmFacts(present, accessible, raw, qemu_present)
    try:
        forced = _override(raw)
    except SpecError:
        return facts
    if forced == "tcg" or not accessible or not qemu_present:
        return facts
    recorder = _RecordingRunner(runner)
    usable = accel.probe_kvm(kernel, recorder)
    return attrs.evolve(facts, probe=ProbeOutcome(usable, describe_probe(recorder.results, usable)))


# -- disk space ------------------------------------------------------------------------------
@frozen
class DfRow:
    """One file system as ``df -P`` reports it.

    Attributes:
        filesystem: The device or source.
        total_bytes: Size.
        used_bytes: Used.
        available_bytes: Free for unprivileged users.
        mount_point: Where it is mounted.
    """

    filesystem: str
    total_bytes: int
    used_bytes: int
    available_bytes: int
    mount_point: str


_DF_UNIT = re.compile(r"^(\d+)([KMG]?)-blocks$")
_DF_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_df(text: str) -> DfRow:
    """The one file system of ``df -P [-k] -- PATH`` output.

    Raises:
        ParseError: ``text`` is not POSIX ``df`` output for one file system.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 2 or not lines[0].startswith("Filesystem"):
        raise ParseError("df -P", "expected a header and one line", text=text)
    header = lines[0].split()
    unit = _DF_UNIT.match(header[1]) if len(header) > 1 else None
    if unit is None:
        raise ParseError("df -P", "no N-blocks column in the header", line=1, text=lines[0])
    block = int(unit.group(1)) * _DF_UNITS[unit.group(2)]
    fields = lines[1].split(None, 5)
    if len(fields) != 6 or not all(f.isdigit() for f in fields[1:4]):
        raise ParseError("df -P", "expected six columns", line=2, text=lines[1])
    size, used, avail = (int(f) * block for f in fields[1:4])
    return DfRow(fields[0], size, used, avail, fields[5])


def _gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


def disk_check(cache: Path, measured_at: Path, available_bytes: int) -> Check:
    """Judge the free space for the image cache ``cache`` (measured at ``measured_at``, its
    nearest existing directory)."""
    where = (
        str(cache)
        if measured_at == cache
        else f"{cache} (not created yet; measured at {measured_at})"
    )
    found = f"{_gib(available_bytes)} free for the image cache {where}"
    fix = (
        "free space on that file system, or set OCFS2LAB_CACHE to a directory on a "
        f"larger one (at least {_gib(DISK_WARN_BYTES)} free)"
    )
    if available_bytes < DISK_MISSING_BYTES:
        return Check(
            "disk-space",
            "missing",
            found,
            f"below {_gib(DISK_MISSING_BYTES)}: building the image (~1.2 GB) or running VMs "
            "(each writes an overlay) can fill the disk",
            fix,
        )
    if available_bytes < DISK_WARN_BYTES:
        return Check(
            "disk-space",
            "warn",
            found,
            f"below {_gib(DISK_WARN_BYTES)}: enough for the image (~1.2 GB), little room for "
            "VM overlays and a rebuild",
            fix,
        )
    return Check(
        "disk-space", "ok", found, "room for the lab image (~1.2 GB) and the VMs' overlays"
    )


def nearest_directory(path: Path) -> Path:
    """``path`` or its nearest existing ancestor that is a directory."""
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return Path("/")


def _disk(runner: Runner, cache: Path) -> Check:
    measured_at = nearest_directory(cache)
    result, _ = run_program(runner, ["df", "-P", "-k", "--", str(measured_at)])
    if not result.ok:
        return Check(
            "disk-space",
            "error",
            f"`{result.command_line}` failed ({result.exit_code}): "
            f"{_first_line(result.stderr or result.stdout)}",
            "free space for the image cache is unknown",
            "apt-get install coreutils",
        )
    return disk_check(cache, measured_at, parse_df(result.stdout).available_bytes)


# -- the image cache -------------------------------------------------------------------------
def image_check(
    recipe: ImageRecipe,
    images: Path,
    image: LabImage | None,
    manifest: Mapping[str, object] | None = None,
    others: Sequence[str] = (),
) -> Check:
    """Judge the image cache: is the image of ``recipe`` built?

    Args:
        recipe: The recipe lab machines boot by default.
        images: The cache's image directory.
        image: The built image of ``recipe`` ([`find_image`][ocfs2lab.vm.image.find_image]), if any.
        manifest: Its ``manifest.json``.
        others: Names of the other built images in ``images``.
    """
    if image is not None:
        info = manifest or {}
        details = ", ".join(
            f"{label} {info[key]}"
            for key, label in (("kernel_version", "kernel"), ("built_at", "built"))
            if info.get(key)
        )
        return Check(
            "image-cache",
            "ok",
            f"{recipe.release} lab image {image.directory}" + (f" ({details})" if details else ""),
            "lab VMs boot from it at once; nothing to build",
        )
    found = f"no {recipe.release} lab image of the current recipe ({images / recipe.short_name})"
    if others:
        found += f"; other images there: {', '.join(others)}"
    return Check(
        "image-cache",
        "warn",
        found,
        "the first lab VM builds it (once; needs root and the Debian mirror; how long: "
        "docs/facts.md, First run); "
        "images of other keys come from other releases or older recipes",
        "ocfs2lab image build (as root)",
    )


def _image(cache: Path, recipe: ImageRecipe) -> tuple[Check, LabImage | None]:
    image = find_image(recipe, cache_dir=cache)
    images = images_dir(cache)
    manifest: dict[str, object] | None = None
    if image is not None:
        with contextlib.suppress(OSError, ValueError):
            manifest = read_manifest(image)
    others = (
        sorted(
            p.name
            for p in images.iterdir()
            if p.is_dir() and not p.name.startswith(".") and p.name != recipe.short_name
            if (p / "manifest.json").exists()
        )
        if images.is_dir()
        else []
    )
    return image_check(recipe, images, image, manifest, others), image


def lab_kernel_check(
    recipe: KernelRecipe | None, kernel: KernelBuild | None, missing: Sequence[str]
) -> Check:
    """Judge the lab kernel: built, buildable here, or not.

    Args:
        recipe: The kernel the default image builds (``None``: Debian's kernel).
        kernel: Its cached build, if any.
        missing: Debian packages a build lacks on this machine.
    """
    if recipe is None:
        return Check("lab-kernel", "ok", "Debian's packaged kernel", "no coverage of the kernel")
    if kernel is not None:
        return Check(
            "lab-kernel",
            "ok",
            f"{kernel.release} built with gcov of {', '.join(kernel.gcov_dirs)} "
            f"({kernel.directory}, GCC {kernel.gcc_version})",
            "lab VMs boot it; coverage reports read its counters",
        )
    meaning = (
        f"the first lab image build compiles it from {recipe.source_package}, once: the "
        "longest step of a first run (how long: docs/facts.md, First run)"
    )
    if missing:
        return Check(
            "lab-kernel",
            "missing",
            f"not built, and a build lacks: {', '.join(missing)}",
            meaning,
            f"apt-get install {' '.join(missing)}",
        )
    return Check("lab-kernel", "warn", "not built yet", meaning, "ocfs2lab image build (as root)")


def _lab_kernel(cache: Path) -> Check:
    recipe = ImageRecipe().kernel
    kernel = find_kernel(recipe, cache_dir=cache) if recipe is not None else None
    return lab_kernel_check(recipe, kernel, kernel_build_missing())


# -- Docker ----------------------------------------------------------------------------------
@frozen
class DockerFacts:
    """What doctor learned about Docker on this machine.

    Attributes:
        cli: Result of ``docker --version``.
        daemon: Result of ``dockerd --version``.
        engine_version: Version of the engine that answered a ping, ``None`` when none did.
        engine_error: Why no engine answered.
        endpoint: Where the engine was looked for (``$DOCKER_HOST`` or the default socket).
    """

    cli: CommandResult
    daemon: CommandResult
    engine_version: str | None = None
    engine_error: str | None = None
    endpoint: str = DEFAULT_DOCKER_ENDPOINT


def ping_docker(timeout: float = DOCKER_TIMEOUT) -> tuple[str | None, str | None]:
    """Ping this machine's Docker engine (``$DOCKER_HOST`` or the default socket).

    Returns:
        The engine's version and ``None``, or ``None`` and why it did not answer.
    """
    client = None
    try:
        client = docker_sdk.from_env(timeout=int(max(1, timeout)))
        client.ping()
        version = client.version().get("Version")
        return (str(version) if version else "unknown version"), None
    except (docker_sdk.errors.DockerException, OSError) as err:
        return None, str(err)[:200]
    finally:
        if client is not None:
            client.close()


def docker_check(facts: DockerFacts) -> Check:
    """Judge Docker on this machine: the lab's container topology runs inside the lab VM,
    so here it is needed only by the integration tests (which start their own ``dockerd``)
    and by ``ocfs2lab up`` / ``status`` without ``--ssh``."""
    parts = []
    cli = parse_tool_version(DOCKER_CLI, facts.cli.stdout + facts.cli.stderr)
    daemon = parse_tool_version(DOCKERD, facts.daemon.stdout + facts.daemon.stderr)
    parts.append(f"docker CLI {cli}" if facts.cli.ok and cli else "no docker CLI")
    parts.append(f"dockerd {daemon}" if facts.daemon.ok and daemon else "no dockerd")
    meaning = (
        "the container topology runs inside the lab VM anyway; on this machine Docker is "
        "needed only for the integration tests and for `ocfs2lab up` without --ssh"
    )
    if facts.engine_version is not None:
        return Check(
            "docker", "ok", f"engine {facts.engine_version} answers; {', '.join(parts)}", meaning
        )
    found = f"no engine answers at {facts.endpoint} ({facts.engine_error}); {', '.join(parts)}"
    if facts.daemon.ok:
        fix = (
            "nothing for the lab VM or the integration tests (they start their own dockerd); "
            "for `ocfs2lab up` here: `systemctl start docker`"
        )
    else:
        fix = "apt-get install docker.io (the integration tests start its dockerd)"
    return Check("docker", "warn", found, meaning, fix)


def _docker(runner: Runner) -> Check:
    cli, _ = run_program(runner, [DOCKER_CLI.name, *DOCKER_CLI.args])
    daemon, _ = run_program(runner, [DOCKERD.name, *DOCKERD.args])
    version, error = ping_docker()
    endpoint = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_ENDPOINT
    return docker_check(DockerFacts(cli, daemon, version, error, endpoint))


# -- the host kernel -------------------------------------------------------------------------
def parse_proc_filesystems(text: str) -> frozenset[str]:
    """The file system types of ``/proc/filesystems`` (``nodev`` flags dropped)."""
    return frozenset(line.split()[-1] for line in text.splitlines() if line.split())


def parse_module_list(text: str) -> frozenset[str]:
    """Module names from ``ls -1 /sys/module``."""
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


@frozen
class KernelFacts:
    """What doctor learned about one feature of this machine's kernel.

    Attributes:
        release: ``uname -r``.
        filesystems: Types in ``/proc/filesystems``; ``None`` when unreadable.
        modules: Names in ``/sys/module``; ``None`` when unreadable.
        modprobe: Result of ``modprobe -n -v <module>`` (exit 0: it can be loaded).
    """

    release: str
    filesystems: frozenset[str] | None
    modules: frozenset[str] | None
    modprobe: CommandResult


@frozen
class KernelFeature:
    """A kernel feature the lab needs on the machine that runs the nodes.

    Attributes:
        name: ``ocfs2`` or ``drbd`` (the module; for OCFS2 also the file system type).
        label: How to call it in words.
        fix: How to get it on this machine.
    """

    name: str
    label: str
    fix: str


OCFS2 = KernelFeature(
    "ocfs2",
    "OCFS2",
    "only for `ocfs2lab up` on this machine: a kernel with OCFS2 (Debian's linux-image-amd64 "
    "has it as modules), then `modprobe -a ocfs2 ocfs2_stack_o2cb ocfs2_dlmfs`",
)
DRBD = KernelFeature(
    "drbd",
    "DRBD",
    "only for `ocfs2lab up` on this machine: a kernel with DRBD (Debian's linux-image-amd64 "
    "has DRBD 8.4 in-tree), then `modprobe drbd`; drbd-utils for drbdadm",
)
KERNEL_FEATURES = (OCFS2, DRBD)


def kernel_check(feature: KernelFeature, facts: KernelFacts) -> Check:
    """Judge whether this machine's own kernel has ``feature``. Without it the lab VM (the
    default host) provides its own kernel, so its absence is a warning, not an error."""
    name = f"kernel-{feature.name}"
    ok_meaning = (
        f"this machine's kernel can run {feature.label} itself (`ocfs2lab up` here); "
        "containers on one kernel are still one OCFS2 node"
    )
    if feature is OCFS2 and facts.filesystems is not None and "ocfs2" in facts.filesystems:
        return Check(name, "ok", f"ocfs2 in /proc/filesystems (kernel {facts.release})", ok_meaning)
    if facts.modules is not None and feature.name in facts.modules:
        return Check(
            name, "ok", f"module {feature.name} loaded (kernel {facts.release})", ok_meaning
        )
    if facts.modprobe.ok:
        return Check(
            name,
            "ok",
            f"module {feature.name} available, not loaded (kernel {facts.release})",
            ok_meaning + "; the lab loads it",
        )
    if facts.modprobe.exit_code == EXIT_NOT_FOUND:
        why = "not loaded, and modprobe (kmod) is not installed"
    else:
        detail = _first_line(facts.modprobe.stderr or facts.modprobe.stdout)
        why = "neither built in nor loaded" + (f" ({detail})" if detail else "")
    return Check(
        name,
        "warn",
        f"no {feature.label} in kernel {facts.release}: {why}",
        f"the lab VM (the default) brings its own kernel with {feature.label}; this "
        "machine's kernel matters only for deploying on it directly",
        feature.fix,
    )


def _kernel(runner: Runner) -> list[Check]:
    uname, _ = run_program(runner, ["uname", "-r"])
    release = uname.stdout.strip() if uname.ok else "unknown"
    fs, _ = run_program(runner, ["cat", "/proc/filesystems"])
    mods, _ = run_program(runner, ["ls", "-1", "/sys/module"])
    checks = []
    for feature in KERNEL_FEATURES:
        modprobe, _ = run_program(runner, ["modprobe", "-n", "-v", feature.name])
        facts = KernelFacts(
            release,
            parse_proc_filesystems(fs.stdout) if fs.ok else None,
            parse_module_list(mods.stdout) if mods.ok else None,
            modprobe,
        )
        checks.append(kernel_check(feature, facts))
    return checks


# -- Python extras ---------------------------------------------------------------------------
def installed_versions(distributions: Iterable[str]) -> dict[str, str | None]:
    """The installed version of each distribution, ``None`` when it is not installed."""
    versions: dict[str, str | None] = {}
    for dist in distributions:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def extra_check(extra: str, versions: Mapping[str, str | None]) -> Check:
    """Judge an optional extra from the versions of its distributions."""
    name = f"extra-{extra}"
    meaning = EXTRA_MEANINGS.get(extra, f"the {extra} extra")
    missing = [d for d, v in versions.items() if v is None]
    present = ", ".join(f"{d} {v}" for d, v in versions.items() if v is not None)
    if not missing:
        return Check(name, "ok", present, f"{meaning} work")
    found = f"not installed: {', '.join(missing)}" + (f"; installed: {present}" if present else "")
    return Check(
        name,
        "warn",
        found,
        f"optional: {meaning} need it; the rest of the library does not",
        f"pip install 'ocfs2lab[{extra}]'",
    )


# -- all of it -------------------------------------------------------------------------------
def _guarded(names: str | Sequence[str], make: Callable[[], list[Check]]) -> list[Check]:
    """Run the gathering of the checks ``names``; an unexpected failure (a runner that
    cannot reach its machine, an unreadable file) becomes an ``error`` check for each."""
    try:
        return make()
    except (Ocfs2LabError, OSError) as err:
        log.debug("doctor: %s failed", names, exc_info=True)
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        return [
            Check(
                name,
                "error",
                f"could not check: {text}",
                "unknown: the check itself failed",
                "run `ocfs2lab -v doctor` for details",
            )
            for name in ([names] if isinstance(names, str) else names)
        ]


def diagnose(
    runner: Runner | None = None, *, cache_dir: str | os.PathLike[str] | None = None
) -> DoctorReport:
    """Check this machine for everything the lab uses; report, for each piece, what was
    found, what it means and how to get it.

    Nothing here raises for a missing or broken piece: each becomes a ``missing``, ``warn``
    or ``error`` check. It takes a few seconds: programs are asked for their version (each
    with a timeout of `TOOL_TIMEOUT` s), the KVM probe guests boot when ``/dev/kvm``
    is usable (`ocfs2lab.vm.accel.PROBE_TIMEOUT` s each at most) and the Docker engine
    gets `DOCKER_TIMEOUT` s to answer.

    Args:
        runner: Runs this machine's programs (a [`LocalRunner`][ocfs2lab.runner.local.LocalRunner]
            by default).
        cache_dir: The lab's cache ([`cache_root`][ocfs2lab.vm.recipe.cache_root] by default): free
            space there, and the image of the default
            [`ImageRecipe`][ocfs2lab.vm.recipe.ImageRecipe].

    Returns:
        The report, its checks in a fixed order: ``qemu-system-x86_64``, ``qemu-img``,
        ``kvm``, ``debootstrap``, ``mkfs.ext4``, ``vde_switch``, ``ssh``, ``ssh-keygen``,
        ``disk-space``, ``image-cache``, ``lab-kernel``, ``docker``, ``kernel-ocfs2``,
        ``kernel-drbd``, ``extra-notebook``, ``extra-coverage``.
    """
    runner = runner or LocalRunner()
    cache = Path(cache_dir) if cache_dir is not None else cache_root()
    tools = {t.name: _guarded(t.name, partial(_probe_tool, runner, t))[0] for t in TOOLS}

    image: LabImage | None = None

    def image_step() -> list[Check]:
        nonlocal image
        check, image = _image(cache, ImageRecipe())
        return [check]

    def kvm_step() -> list[Check]:
        kernel = image.kernel if image is not None else None
        qemu_present = tools[QEMU.name].status == "ok"
        return [kvm_check(gather_kvm(runner, qemu_present=qemu_present, kernel=kernel))]

    image_checks = _guarded("image-cache", image_step)
    kvm = _guarded("kvm", kvm_step)
    checks = [
        tools[QEMU.name],
        tools["qemu-img"],
        *kvm,
        *(tools[t.name] for t in TOOLS if t.name not in {QEMU.name, "qemu-img"}),
        *_guarded("disk-space", lambda: [_disk(runner, cache)]),
        *image_checks,
        *_guarded("lab-kernel", lambda: [_lab_kernel(cache)]),
        *_guarded("docker", lambda: [_docker(runner)]),
        *_guarded([f"kernel-{f.name}" for f in KERNEL_FEATURES], lambda: _kernel(runner)),
        *(extra_check(extra, installed_versions(dists)) for extra, dists in EXTRAS.items()),
    ]
    report = DoctorReport(checks)
    log.debug("doctor: %s", [(c.name, c.status) for c in report.checks])
    return report


__all__ = [
    "Check",
    "DoctorReport",
    "Status",
    "diagnose",
]
