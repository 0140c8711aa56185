"""This machine's own kernel: does it have OCFS2 and DRBD?

The lab VM (the default host) brings its own kernel, so their absence here is a warning:
[`kernel_check`][ocfs2lab.doctor.host_kernel.kernel_check] judges each
[`KernelFeature`][ocfs2lab.doctor.host_kernel.KernelFeature] from what ``/proc/filesystems``,
``/sys/module`` and ``modprobe -n`` say.
"""

from __future__ import annotations

from attrs import frozen

from ocfs2lab.doctor.programs import first_line, run_program
from ocfs2lab.doctor.report import Check
from ocfs2lab.runner.base import CommandResult, Runner
from ocfs2lab.runner.local import EXIT_NOT_FOUND

__all__ = [
    "DRBD",
    "KERNEL_FEATURES",
    "OCFS2",
    "KernelFacts",
    "KernelFeature",
    "diagnose_host_kernel",
    "kernel_check",
    "parse_module_list",
    "parse_proc_filesystems",
]


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
        detail = first_line(facts.modprobe.stderr or facts.modprobe.stdout)
        why = "neither built in nor loaded" + (f" ({detail})" if detail else "")
    return Check(
        name,
        "warn",
        f"no {feature.label} in kernel {facts.release}: {why}",
        f"the lab VM (the default) brings its own kernel with {feature.label}; this "
        "machine's kernel matters only for deploying on it directly",
        feature.fix,
    )


def diagnose_host_kernel(runner: Runner) -> list[Check]:
    """Look at this machine's kernel (``uname``, ``/proc/filesystems``, ``/sys/module``,
    ``modprobe -n``) and judge each feature of `KERNEL_FEATURES`."""
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
