"""The same recovery experiment on two or more kernels, in interleaved rounds.

``compare_kernels({"base": KernelRecipe(), "patched": KernelRecipe(patches=[p])}, repeat=5)``
builds each kernel (a patched one incrementally from the cached base), boots one VM cluster
per kernel from the same cached root image, and runs the experiment in rounds: base,
patched, base, patched, ... so that drift in the machine's load falls on both. It returns a
[`Comparison`][ocfs2lab.experiment.compare.Comparison]: per figure the medians, a bootstrap
confidence interval of their difference and a Mann-Whitney U p-value, lost writes per
kernel, the runs as a DataFrame and a plot of the distributions, and each kernel's
provenance (release, recipe key, patches, tree commit, profile).

All clusters stay up for the whole comparison (one cluster idles while the other runs; the
idle guests' small load falls on both arms alike).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ocfs2lab.clusters import FaultName, VmCluster
from ocfs2lab.errors import SpecError
from ocfs2lab.experiment.compare import COMPARED_FIGURES, Comparison, run_interleaved
from ocfs2lab.experiment.recovery import RecoveryExperiment
from ocfs2lab.report import LogReporter, Reporter
from ocfs2lab.spec.cluster import TimingSpec
from ocfs2lab.vm.image import build_image
from ocfs2lab.vm.recipe import ImageRecipe, KernelRecipe, LabImage

log = logging.getLogger(__name__)

#: Called after each run with (round, label, the run's row).
RunHook = Callable[[int, str, Mapping[str, Any]], None]


def kernel_images(
    kernels: Mapping[str, KernelRecipe],
    *,
    release: str = "trixie",
    cache_dir: str | os.PathLike[str] | None = None,
    reporter: Reporter | None = None,
) -> dict[str, LabImage]:
    """Build (or find) each kernel and the one root image they all boot.

    Raises:
        SpecError: Fewer than two kernels, or a label that is empty.
        KernelBuildError: A kernel cannot be built (a patch that does not apply, a config
            line that does not stick): raised before any machine boots.
    """
    if len(kernels) < 2:
        raise SpecError("kernels", list(kernels), "a comparison needs at least two kernels")
    for label in kernels:
        if not label or not label.replace("-", "").replace("_", "").isalnum():
            raise SpecError("kernels", label, "labels must be short words (letters, digits, -)")
    return {
        label: build_image(
            ImageRecipe(release=release, kernel=recipe), cache_dir=cache_dir, reporter=reporter
        )
        for label, recipe in kernels.items()
    }


def compare_kernels(
    kernels: Mapping[str, KernelRecipe],
    *,
    nodes: int = 3,
    fault: FaultName = "kill",
    victim: str | int = -1,
    repeat: int = 3,
    timing: TimingSpec | None = None,
    hold: float = 0.0,
    memory_mib: int = 1024,
    release: str = "trixie",
    cache_dir: str | os.PathLike[str] | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    reporter: Reporter | None = None,
    on_run: RunHook | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Run one recovery experiment on each kernel, interleaved, and compare the figures.

    Args:
        kernels: Label -> kernel recipe; the first is the base every other is compared with.
        nodes: VM nodes per cluster.
        fault: ``kill``, ``freeze``, ``partition`` or ``disk_stall``.
        victim: The node to fault (name or number; ``-1``: the last).
        repeat: Runs per kernel (rounds).
        timing: Heartbeat and o2net knobs (the VM default: dead threshold 7, idle 10 s).
        hold: For lifted faults, seconds they stay after recovery.
        memory_mib: Memory per VM.
        release: Debian release of the root image.
        cache_dir: Image and kernel cache.
        log_dir: Keep every node's console and QEMU logs here (``<label>/`` each).
        reporter: Receives the build and boot phases.
        on_run: Called after each run with (round, label, row).
        confidence: Of the intervals.
        seed: Of the bootstrap.

    Returns:
        The comparison; its provenance names each kernel.

    Raises:
        SpecError: Bad input, before anything is built or booted.
        KernelBuildError: A kernel cannot be built (before any machine boots).
    """
    if repeat < 1:
        raise SpecError("repeat", repeat, "must be at least 1")
    if nodes < 2:
        raise SpecError("nodes", nodes, "an experiment needs 2 nodes")
    reporter = reporter or LogReporter()
    images = kernel_images(kernels, release=release, cache_dir=cache_dir, reporter=reporter)
    provenance = {label: dict(image.kernel_provenance) for label, image in images.items()}
    with contextlib.ExitStack() as stack:
        experiments: dict[str, RecoveryExperiment] = {}
        for number, (label, image) in enumerate(images.items(), start=1):
            logs = Path(log_dir) / label if log_dir is not None else None
            cluster = stack.enter_context(
                VmCluster(
                    nodes,
                    name=f"ab{number}",
                    timing=timing,
                    memory_mib=memory_mib,
                    image=image,
                    cache_dir=cache_dir,
                    log_dir=logs,
                    reporter=reporter,
                )
            )
            experiments[label] = RecoveryExperiment(
                cluster, fault=fault, victim=victim, hold=hold
            )

        def arm(label: str) -> Callable[[int], Mapping[str, Any]]:
            def one(round_number: int) -> Mapping[str, Any]:
                report = experiments[label].run_once()
                log.info("round %d, %s: %s", round_number, label, report.summary())
                return report.row()

            return one

        return run_interleaved(
            {label: arm(label) for label in images},
            repeat,
            on_run=on_run,
            figures=COMPARED_FIGURES,
            confidence=confidence,
            seed=seed,
            provenance=provenance,
        )


__all__ = ["compare_kernels", "kernel_images"]
