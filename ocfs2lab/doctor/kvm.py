"""KVM or TCG: which accelerator lab machines get here, and why.

[`gather_kvm`][ocfs2lab.doctor.kvm.gather_kvm] looks at ``/dev/kvm`` and ``$OCFS2LAB_ACCEL``
and, when KVM could be used, boots the probe guests of
[`ocfs2lab.vm.accel.probe_kvm`][ocfs2lab.vm.accel.probe_kvm];
[`kvm_check`][ocfs2lab.doctor.kvm.kvm_check] judges what it found.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
from attrs import frozen

from ocfs2lab.doctor.programs import QEMU, first_line
from ocfs2lab.doctor.report import Check
from ocfs2lab.errors import SpecError
from ocfs2lab.runner.base import DEFAULT_TIMEOUT, CommandResult, Runner
from ocfs2lab.vm import accel

__all__ = [
    "KVM_DEVICE",
    "TCG_MEANING",
    "KvmFacts",
    "ProbeOutcome",
    "describe_probe",
    "gather_kvm",
    "kvm_check",
]

KVM_DEVICE = "/dev/kvm"
TCG_MEANING = (
    "guests run under software emulation (TCG), ~5x slower: boots and tests take longer, "
    "nothing else changes"
)


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
    message = first_line(last.stderr)
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
