"""Machines restored from saved states against machines booted cold, side by side in one run.

Measures, each cold and restored:

1. one VM to ssh-ready, and three at once (the "boot nodes" step of ``VmCluster(N,
   deploy=False)``; with saved states each node restores from its slot);
2. a 3-VM cluster up (entering ``VmCluster(3)``: disk, switch, nodes, o2cb, mkfs, mount);
3. with both clusters up, kills of node 3 in interleaved rounds (cold, restored, cold, ...):
   the kill-recover-revive cycle (one run of the experiment), the victim's revive (its
   machine's start to ssh-ready), and detection, eviction and recovery compared with
   intervals: restored nodes must not change what the kernels do.

The slots are saved first (a warm-up start of each node identity, not counted).

Run: .venv/bin/python benchmarks/bench_snapshots.py [--repeat 4] [--dead-threshold 7]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ocfs2lab.clusters import VM_TIMING, VmCluster
from ocfs2lab.experiment import RecoveryExperiment
from ocfs2lab.experiment.compare import run_interleaved

ARMS = ("cold", "restored")


def _fmt(values: list[float]) -> str:
    if not values:
        return "-"
    spread = f" [{min(values):.1f}-{max(values):.1f}]" if len(values) > 1 else ""
    return f"{statistics.median(values):.1f}{spread}"


def _timed(cluster: VmCluster) -> tuple[float, float | None]:
    """Seconds to enter the cluster, and its 'boot nodes' step."""
    started = time.monotonic()
    with cluster:
        up = time.monotonic() - started
        restored = [vm.restored for vm in cluster.vms]
    print(f"    ({cluster.spec.name}: restored {sum(restored)} of {len(restored)})")
    return up, cluster.timings.get("boot nodes")


def bench_starts(timing: Any) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {arm: {} for arm in ARMS}
    print("warm-up: saving the slots (not counted)")
    for n in (1, 3):
        with VmCluster(n, name=f"warm{n}", deploy=False, snapshots=True):
            pass
    with VmCluster(3, name="warm", timing=timing, snapshots=True):
        pass
    for arm in ARMS:
        snap = arm == "restored"
        for n in (1, 3):
            _up, step = _timed(VmCluster(n, name=f"boot{n}", deploy=False, snapshots=snap))
            out[arm][f"VM to ssh-ready, N={n}"] = step or float("nan")
        up, _step = _timed(VmCluster(3, name="up", timing=timing, snapshots=snap))
        out[arm]["3-VM cluster up"] = up
    return out


def bench_cycles(timing: Any, repeat: int) -> tuple[dict[str, dict[str, list[float]]], Any]:
    measures: dict[str, dict[str, list[float]]] = {
        arm: {"revive": [], "kill-recover-revive cycle": []} for arm in ARMS
    }
    clusters = {
        arm: VmCluster(3, name=f"c{arm[:4]}", timing=timing, snapshots=arm == "restored")
        for arm in ARMS
    }
    with clusters["cold"], clusters["restored"]:
        experiments = {
            arm: RecoveryExperiment(c, fault="kill", victim=3) for arm, c in clusters.items()
        }

        def arm_run(arm: str) -> Callable[[int], Mapping[str, Any]]:
            def run(_round: int) -> Mapping[str, Any]:
                report = experiments[arm].run_once()
                victim = clusters[arm].vm(3)
                assert victim.machine is not None and victim.machine.boot_seconds is not None
                assert victim.restored == (arm == "restored"), victim.machine.start_note
                measures[arm]["revive"].append(victim.machine.boot_seconds)
                measures[arm]["kill-recover-revive cycle"].append(report.duration)
                print(f"  {arm:8} {report.summary()}")
                return report.row()

            return run

        comparison = run_interleaved({arm: arm_run(arm) for arm in ARMS}, repeat)
    return measures, comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=4, help="kills per arm")
    parser.add_argument("--dead-threshold", type=int, default=VM_TIMING.dead_threshold)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    timing = attrs.evolve(VM_TIMING, dead_threshold=args.dead_threshold)
    started = time.monotonic()
    starts = bench_starts(timing)
    measures, comparison = bench_cycles(timing, args.repeat)
    print(
        "\n## Cold boot against restore (TCG, 2 host cores, 1 GiB 1-CPU nodes, "
        f"{args.repeat} kills per arm)"
    )
    print(f"{'measure':34} {'cold (s)':>18} {'restored (s)':>18}")
    for name in starts["cold"]:
        print(f"{name:34} {starts['cold'][name]:18.1f} {starts['restored'][name]:18.1f}")
    for name in ("revive", "kill-recover-revive cycle"):
        print(
            f"{name:34} {_fmt(measures['cold'][name]):>18} {_fmt(measures['restored'][name]):>18}"
        )
    print(
        f"\n## What the kernels did, restored against cold (dead_threshold {args.dead_threshold})"
    )
    print(comparison.summary())
    print(f"\ntotal {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
