"""Coverage costs: the lab kernel's build (from its manifest), and for a 3-node deployment in
the lab VM the time to reset the counters, to read the .gcda files (kernel from debugfs,
tools from the containers) and to make the gcovr reports (with and without HTML); the files
and bytes read.

Run: .venv/bin/python benchmarks/bench_coverage.py [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from ocfs2lab.clusters import Cluster
from ocfs2lab.coverage.report import make_report
from ocfs2lab.host.labvm import LabVm
from ocfs2lab.spec.storage import DrbdSpec
from ocfs2lab.vm.kernel import find_kernel
from ocfs2lab.vm.recipe import ImageRecipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    recipe = ImageRecipe().kernel
    kernel = find_kernel(recipe) if recipe is not None else None
    if kernel is not None:
        manifest = json.loads((kernel.directory / "manifest.json").read_text())
        print(f"lab kernel {kernel.release}: built in {manifest['build_seconds']} s")
        for name, seconds in manifest["phase_seconds"].items():
            print(f"  {name:18s} {seconds:7.1f} s")
        print(f"  files compiled     {manifest.get('files_compiled')}")
    with (
        LabVm(hostname="benchcov") as host,
        Cluster(host, 3, name="benchcov", drbd=DrbdSpec(size="1G")) as cluster,
    ):
        coverage = cluster.coverage()
        trees = [t for t in (coverage.kernel, *coverage.tools) if t is not None]
        for run in range(args.repeat):
            t0 = time.monotonic()
            coverage.reset()
            t1 = time.monotonic()
            cluster.run_workload()
            for node in cluster.nodes:
                node.run(["o2probe", "write", f"/mnt/ocfs2/bench.{node.spec.name}", "64"])
            t2 = time.monotonic()
            collected = coverage.read()
            t3 = time.monotonic()
            with tempfile.TemporaryDirectory() as out:
                report = make_report(collected, trees, Path(out) / "html")
                t4 = time.monotonic()
                make_report(collected, trees, Path(out) / "json", html=False)
                t5 = time.monotonic()
            sizes = {
                name: sum(len(d) for files in per.values() for d in files.values())
                for name, per in collected.data.items()
            }
            print(f"run {run + 1}: {report.one_line()}")
            print(f"  reset             {t1 - t0:7.1f} s")
            print(f"  workload + probe  {t2 - t1:7.1f} s")
            print(f"  read .gcda        {t3 - t2:7.1f} s  {report.gcda_files} files, {sizes} bytes")
            print(f"  gcovr reports     {t4 - t3:7.1f} s (JSON only: {t5 - t4:.1f} s)")


if __name__ == "__main__":
    main()
