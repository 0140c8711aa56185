"""The same recovery experiment on two or more kernels (or cluster stacks), in interleaved
rounds.

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

``compare_stacks(("o2cb", "pcmk"), repeat=5)`` does the same with one cluster per cluster
stack on one kernel: o2dlm against fs/dlm, with the same table, statistics and plot.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import attrs

from ocfs2lab.clusters import FaultName, VmCluster
from ocfs2lab.errors import SpecError
from ocfs2lab.experiment.compare import COMPARED_FIGURES, Comparison, run_interleaved
from ocfs2lab.experiment.recovery import RecoveryExperiment
from ocfs2lab.report import LogReporter, Reporter
from ocfs2lab.spec.cluster import TimingSpec
from ocfs2lab.spec.stack import PcmkSpec, StackName, check_stack
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
    stack: StackName = "o2cb",
    pcmk: PcmkSpec | None = None,
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
        stack: The cluster stack every cluster runs (``o2cb`` or ``pcmk``).
        pcmk: The pcmk stack's knobs.

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

    def cluster_of(label: str, number: int) -> VmCluster:
        logs = Path(log_dir) / label if log_dir is not None else None
        return VmCluster(
            nodes,
            name=f"ab{number}",
            timing=timing,
            memory_mib=memory_mib,
            image=images[label],
            cache_dir=cache_dir,
            log_dir=logs,
            reporter=reporter,
            stack=stack,
            pcmk=pcmk,
        )

    return compare_clusters(
        {label: partial(cluster_of, label, k) for k, label in enumerate(images, start=1)},
        fault=fault,
        victim=victim,
        repeat=repeat,
        hold=hold,
        on_run=on_run,
        confidence=confidence,
        seed=seed,
        provenance=provenance,
    )


def compare_clusters(
    clusters: Mapping[str, Callable[[], VmCluster]],
    *,
    fault: FaultName = "kill",
    victim: str | int = -1,
    repeat: int = 3,
    hold: float = 0.0,
    on_run: RunHook | None = None,
    confidence: float = 0.95,
    seed: int = 0,
    provenance: Mapping[str, Mapping[str, Any]] | None = None,
    describe: Callable[[VmCluster], Mapping[str, Any]] | None = None,
) -> Comparison:
    """Bring up one cluster per arm, run the same experiment on each in interleaved rounds,
    and compare the figures (the first arm is the base).

    Every cluster stays up for the whole comparison, and all are torn down at the end (or
    when one fails to come up or a run fails).

    Args:
        clusters: Label -> a function that makes the arm's cluster (not entered yet).
        fault: ``kill``, ``freeze``, ``partition`` or ``disk_stall``.
        victim: The node to fault (name or number; ``-1``: the last).
        repeat: Runs per arm (rounds).
        hold: For lifted faults, seconds they stay after recovery.
        on_run: Called after each run with (round, label, row).
        confidence: Of the intervals.
        seed: Of the bootstrap.
        provenance: Per arm, what it ran (kernel, stack and settings); kept with the
            comparison.
        describe: Tells what an arm's cluster runs, once it is up (added to its
            provenance).

    Raises:
        SpecError: Fewer than two arms or a bad option, before any cluster is made.
    """
    if len(clusters) < 2:
        raise SpecError("clusters", list(clusters), "a comparison needs at least two arms")
    if repeat < 1:
        raise SpecError("repeat", repeat, "must be at least 1")
    with contextlib.ExitStack() as stack:
        experiments: dict[str, RecoveryExperiment] = {}
        described = {label: dict((provenance or {}).get(label, {})) for label in clusters}
        for label, make in clusters.items():
            cluster = stack.enter_context(make())
            if describe is not None:
                described[label].update(describe(cluster))
            experiments[label] = RecoveryExperiment(cluster, fault=fault, victim=victim, hold=hold)

        def arm(label: str) -> Callable[[int], Mapping[str, Any]]:
            def one(round_number: int) -> Mapping[str, Any]:
                report = experiments[label].run_once()
                log.info("round %d, %s: %s", round_number, label, report.summary())
                return report.row()

            return one

        return run_interleaved(
            {label: arm(label) for label in clusters},
            repeat,
            on_run=on_run,
            figures=COMPARED_FIGURES,
            confidence=confidence,
            seed=seed,
            provenance=described,
        )


def stack_provenance(cluster: VmCluster) -> dict[str, Any]:
    """What an arm of a stack comparison ran: the stack, its knobs and the kernel."""
    settings: dict[str, Any] = (
        attrs.asdict(cluster.pcmk_spec)
        if cluster.stack == "pcmk"
        else attrs.asdict(cluster.spec.timing)
    )
    return {
        "stack": cluster.stack,
        "settings": settings,
        "kernel": cluster.kernel_provenance(),
    }


def compare_stacks(
    stacks: Sequence[StackName] = ("o2cb", "pcmk"),
    *,
    nodes: int = 3,
    fault: FaultName = "kill",
    victim: str | int = -1,
    repeat: int = 3,
    timing: TimingSpec | None = None,
    pcmk: PcmkSpec | None = None,
    hold: float = 0.0,
    memory_mib: int = 1024,
    image: LabImage | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    reporter: Reporter | None = None,
    on_run: RunHook | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Run one recovery experiment on each cluster stack, on the same kernel, interleaved,
    and compare the figures: o2cb's o2dlm against pcmk's fs/dlm.

    The figures mean the same step on both stacks (detection, the DLM's removal of the
    victim, the end of DLM recovery, the end of the journal replay, the longest stall of a
    survivor's writes); see [`RecoveryTimes`][ocfs2lab.experiment.analysis.RecoveryTimes].

    Args:
        stacks: The stacks, the base first.
        nodes: VM nodes per cluster.
        fault: ``kill``, ``freeze``, ``partition`` or ``disk_stall``.
        victim: The node to fault (name or number; ``-1``: the last).
        repeat: Runs per stack (rounds).
        timing: o2cb's knobs (the VM default: dead threshold 7, idle 10 s).
        pcmk: pcmk's knobs (corosync's token and consensus, fencing).
        hold: For lifted faults, seconds they stay after recovery.
        memory_mib: Memory per VM.
        image: The lab image both boot (built or found in the cache by default).
        cache_dir: Image cache.
        log_dir: Keep every node's logs here (``<stack>/`` each).
        reporter: Receives the build and boot phases.
        on_run: Called after each run with (round, label, row).
        confidence: Of the intervals.
        seed: Of the bootstrap.

    Returns:
        The comparison; its provenance names each arm's stack, knobs and kernel.

    Raises:
        SpecError: Bad input, before anything boots.
    """
    labels = [check_stack(s, "stacks") for s in stacks]
    if len(set(labels)) != len(labels) or len(labels) < 2:
        raise SpecError("stacks", list(stacks), "needs two or more different stacks")
    reporter = reporter or LogReporter()

    def cluster_of(stack: StackName, number: int) -> VmCluster:
        logs = Path(log_dir) / stack if log_dir is not None else None
        return VmCluster(
            nodes,
            name=f"st{number}",
            timing=timing,
            memory_mib=memory_mib,
            image=image,
            cache_dir=cache_dir,
            log_dir=logs,
            reporter=reporter,
            stack=stack,
            pcmk=pcmk if stack == "pcmk" else None,
        )

    return compare_clusters(
        {s: partial(cluster_of, s, k) for k, s in enumerate(labels, start=1)},
        fault=fault,
        victim=victim,
        repeat=repeat,
        hold=hold,
        on_run=on_run,
        confidence=confidence,
        seed=seed,
        describe=stack_provenance,
    )


__all__ = [
    "compare_clusters",
    "compare_kernels",
    "compare_stacks",
    "kernel_images",
    "stack_provenance",
]
