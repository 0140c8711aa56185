"""o2cb (o2hb, o2net, o2dlm) against pcmk (corosync, dlm_controld, fs/dlm), side by side.

Two 3-VM clusters on the same lab kernel, one per stack, both up for the whole run. For each
fault, the same recovery experiment (victim node 3) runs on both in interleaved rounds
(o2cb, pcmk, o2cb, pcmk, ...), and the figures are compared: medians, the bootstrap
interval of the difference (pcmk - o2cb), the Mann-Whitney p-value, lost writes, and what
became of the victim. The settings of both stacks are printed first.

Run: .venv/bin/python benchmarks/bench_stacks.py [--faults kill,freeze,partition,disk_stall]
     [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any, cast

from ocfs2lab.clusters import VmCluster
from ocfs2lab.experiment import RecoveryExperiment
from ocfs2lab.experiment.compare import run_interleaved
from ocfs2lab.experiment.faults import FAULTS, FaultName
from ocfs2lab.kernel_ab import stack_provenance

FIGURES = ("detected_s", "evicted_s", "recovery_end_s", "replay_end_s", "max_stall_s")


def bench_fault(clusters: dict[str, VmCluster], fault: FaultName, repeat: int) -> dict[str, Any]:
    """One fault on both stacks, interleaved; prints and returns the comparison."""
    experiments = {
        name: RecoveryExperiment(c, fault=fault, victim=3) for name, c in clusters.items()
    }
    fates: dict[str, collections.Counter[str]] = {n: collections.Counter() for n in clusters}

    def arm(name: str) -> Any:
        def one(round_number: int) -> dict[str, Any]:
            report = experiments[name].run_once()
            print(f"  round {round_number}: {report.summary()}", flush=True)
            fates[name][report.victim_fate] += 1
            return report.row()

        return one

    print(f"\n## {fault} of node 3, {repeat} rounds per stack")
    comparison = run_interleaved({name: arm(name) for name in clusters}, repeat, figures=FIGURES)
    print(comparison.summary())
    print("victim fate: " + "; ".join(f"{n}: {dict(f)}" for n, f in fates.items()))
    return {"comparison": comparison.to_json(), "fates": {n: dict(f) for n, f in fates.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--faults", default="kill,freeze,partition,disk_stall")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per fault")
    parser.add_argument("--json", type=Path, help="write every row and comparison here")
    args = parser.parse_args()
    faults = [cast(FaultName, f) for f in args.faults.split(",") if f in FAULTS]
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    out: dict[str, Any] = {"faults": {}}
    with contextlib.ExitStack() as stack:
        clusters = {
            name: stack.enter_context(VmCluster(3, name=f"bench{name}", stack=name))
            for name in ("o2cb", "pcmk")
        }
        print(f"clusters up after {time.monotonic() - started:.0f} s (TCG, 2 cores)")
        out["settings"] = {name: stack_provenance(c) for name, c in clusters.items()}
        for name, provenance in out["settings"].items():
            print(f"{name}: {json.dumps(provenance['settings'])}")
        for fault in faults:
            out["faults"][fault] = bench_fault(clusters, fault, args.repeat)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
