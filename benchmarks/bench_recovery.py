"""Failure detection and recovery of VM clusters, against the timing knobs, and VM boot times.

Three measurements:

1. Boot time of N VMs booted at once (N = 1, 2, 3): the "boot nodes" step of a
   ``VmCluster(N, deploy=False)``.
2. For each timing configuration: repeated kills of node 3 in a 3-node VM cluster; a table
   of configured knobs, the measured detection / eviction / recovery-end times (median and
   spread) and what the knobs predict.
3. The time of one kill-recover-revive cycle (a run of the experiment).

Run: .venv/bin/python benchmarks/bench_recovery.py [--repeat 3] [--boots 1,2,3]
     [--configs 7:10000,10:5000]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

from ocfs2lab.clusters import VmCluster
from ocfs2lab.experiment import RecoveryExperiment, theory
from ocfs2lab.spec.cluster import TimingSpec


def _configs(text: str) -> list[TimingSpec]:
    out = []
    for item in text.split(","):
        dead, idle = item.split(":")
        out.append(TimingSpec(dead_threshold=int(dead), idle_timeout_ms=int(idle)))
    return out


def _fmt(values: list[float | None]) -> str:
    seen = [v for v in values if v is not None]
    if not seen:
        return "-"
    spread = f" [{min(seen):.1f}-{max(seen):.1f}]" if len(seen) > 1 else ""
    missing = f" ({len(values) - len(seen)} missing)" if len(seen) < len(values) else ""
    return f"{statistics.median(seen):5.1f}{spread}{missing}"


def bench_boots(counts: list[int]) -> None:
    print("\n## Boot of N VMs at once (to ssh ready)")
    print(f"{'N':>3} {'boot nodes (s)':>15} {'per VM (s)':>11}")
    for n in counts:
        cluster = VmCluster(n, name=f"boot{n}", deploy=False)
        with cluster:
            machines = [vm.machine for vm in cluster.vms]
            each = [m.boot_seconds for m in machines if m is not None and m.boot_seconds]
        step = cluster.timings.get("boot nodes", float("nan"))
        print(f"{n:>3} {step:15.1f} {_fmt(list(each)):>11}")


def bench_detection(configs: list[TimingSpec], repeat: int) -> None:
    print(f"\n## Kill of node 3 of 3, {repeat} runs per configuration (seconds after the kill)")
    header = (
        f"{'dead_thr':>8} {'idle_ms':>7} | {'theory detect':>13} {'measured detect':>22} | "
        f"{'theory evict<=':>14} {'measured evict':>22} | {'recovery end':>22} | "
        f"{'cycle':>6} {'lost':>4}"
    )
    rows = []
    for timing in configs:
        with VmCluster(3, name="bench", timing=timing) as cluster:
            series = RecoveryExperiment(cluster, fault="kill", victim=3).run(repeat=repeat)
        t = theory(timing)
        reports = series.reports
        rows.append(
            f"{timing.dead_threshold:>8} {timing.idle_timeout_ms:>7} | "
            f"{t['detect']:>13.1f} {_fmt([r.times.detected for r in reports]):>22} | "
            f"{t['evict_latest']:>14.1f} {_fmt([r.times.evicted for r in reports]):>22} | "
            f"{_fmt([r.times.recovery_end for r in reports]):>22} | "
            f"{statistics.median(r.duration for r in reports):6.1f} {series.lost_writes:>4}"
        )
        for r in reports:
            print("  " + r.summary())
    print(header)
    print("-" * len(header))
    for row in rows:
        print(row)
    print(
        "\ntheory: detect = min(idle timeout, dead_threshold x 2 s) after the last keepalive"
        " or heartbeat; evict <= dead_threshold x 2 s + one 2 s interval + the 5 s DLM"
        " recovery poll. cycle = one kill-recover-revive run (writers, kill, recovery,"
        " revive, read-back)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3, help="kills per configuration")
    parser.add_argument("--boots", default="1,2,3", help="VM counts to boot at once")
    parser.add_argument(
        "--configs", default="7:10000,10:5000", help="dead_threshold:idle_timeout_ms,..."
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    if args.boots:
        bench_boots([int(n) for n in args.boots.split(",")])
    if args.configs:
        bench_detection(_configs(args.configs), args.repeat)
    print(f"\ntotal {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
