"""Bring-up of the seed's deployment in the lab VM, by phase, and teardown.

Run: .venv/bin/python benchmarks/bench_deploy.py [--nodes 3] [--repeat 1]
"""

from __future__ import annotations

import argparse
import time

from ocfs2lab.clusters import Cluster
from ocfs2lab.host.labvm import LabVm
from ocfs2lab.report import LogReporter
from ocfs2lab.runner.base import busy_seconds, watch_commands
from ocfs2lab.spec.storage import DrbdSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--top", type=int, default=15, help="commands by total time to print")
    args = parser.parse_args()
    boot = LogReporter()
    t0 = time.monotonic()
    with LabVm(hostname="benchlab", reporter=boot) as host:
        print(f"lab VM ready in {time.monotonic() - t0:.1f} s")
        for run in range(args.repeat):
            rep = LogReporter()
            started = time.monotonic()
            cluster = Cluster(
                host, args.nodes, name="bench", drbd=DrbdSpec(size="1G"), reporter=rep
            )
            with watch_commands() as spans:
                with cluster:
                    up = time.monotonic() - started
                    cluster.run_workload()
                    down_from = time.monotonic()
                down = time.monotonic() - down_from
            wall = time.monotonic() - started
            own = 1 - busy_seconds(spans) / wall
            print(f"run {run + 1}: {args.nodes} nodes up in {up:.1f} s, teardown {down:.1f} s")
            print(f"  {len(spans)} commands; share of wall time not waiting on one: {own:.1%}")
            for name, seconds in rep.durations.items():
                print(f"  {name:26s} {seconds:7.1f} s")
            for name, seconds in cluster.timings.items():
                print(f"  step {name:21s} {seconds:7.1f} s")
            print(f"  the {args.top} commands that took longest in all:")
            for (what, count), seconds in heaviest(spans, args.top):
                print(f"  {seconds:7.1f} s  {count:3d} x  {what}")


def heaviest(
    spans: list[tuple[float, float, tuple[str, ...]]], top: int
) -> list[tuple[tuple[str, int], float]]:
    """Commands grouped by their first words (the ssh or docker prefix dropped), with their
    count and total time, the heaviest first."""
    totals: dict[str, list[float]] = {}
    for start, end, argv in spans:
        words = list(argv)
        for prefix in ("exec", "-i"):
            if prefix in words[:6]:
                words = words[words.index(prefix) + 1 :]
        key = " ".join(w for w in words[:4] if len(w) < 40)
        totals.setdefault(key, []).append(end - start)
    ranked = sorted(totals.items(), key=lambda kv: -sum(kv[1]))[:top]
    return [((key, len(times)), sum(times)) for key, times in ranked]


if __name__ == "__main__":
    main()
