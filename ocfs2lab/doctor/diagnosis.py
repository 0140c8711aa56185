"""[`diagnose`][ocfs2lab.doctor.diagnosis.diagnose]: every family of checks, run on this machine
in a fixed order, into one report.

A family whose gathering fails unexpectedly (a runner that cannot reach its machine, an
unreadable file) gives an ``error`` check instead of an exception.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from ocfs2lab.doctor.cache import diagnose_disk_space, diagnose_image_cache, diagnose_lab_kernel
from ocfs2lab.doctor.docker import diagnose_docker
from ocfs2lab.doctor.extras import EXTRAS, extra_check, installed_versions
from ocfs2lab.doctor.host_kernel import KERNEL_FEATURES, diagnose_host_kernel
from ocfs2lab.doctor.kvm import gather_kvm, kvm_check
from ocfs2lab.doctor.programs import QEMU, TOOLS, diagnose_tool
from ocfs2lab.doctor.report import Check, DoctorReport
from ocfs2lab.errors import Ocfs2LabError
from ocfs2lab.runner.base import Runner
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.vm.recipe import ImageRecipe, LabImage, cache_root

__all__ = ["diagnose"]

log = logging.getLogger(__name__)


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
    tools = {t.name: _guarded(t.name, partial(diagnose_tool, runner, t))[0] for t in TOOLS}

    image: LabImage | None = None

    def image_step() -> list[Check]:
        nonlocal image
        check, image = diagnose_image_cache(cache, ImageRecipe())
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
        *_guarded("disk-space", lambda: [diagnose_disk_space(runner, cache)]),
        *image_checks,
        *_guarded("lab-kernel", lambda: [diagnose_lab_kernel(cache)]),
        *_guarded("docker", lambda: [diagnose_docker(runner)]),
        *_guarded(
            [f"kernel-{f.name}" for f in KERNEL_FEATURES], lambda: diagnose_host_kernel(runner)
        ),
        *(extra_check(extra, installed_versions(dists)) for extra, dists in EXTRAS.items()),
    ]
    report = DoctorReport(checks)
    log.debug("doctor: %s", [(c.name, c.status) for c in report.checks])
    return report
