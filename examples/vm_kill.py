"""Kill a node of a 3-node VM cluster under load, plot the recovery timeline, and see which
kernel code the recovery ran.

Three QEMU machines boot from the lab image (one kernel each), share one disk and an
interconnect switch of the lab's own. A writer on every node reports each fsynced record
to this machine; the last node is killed (SIGKILL of its QEMU); the survivors' kernels detect
the death, evict it, run DLM recovery and replay its journal; the node is booted again and
rejoins; every acknowledged record is read back. The kernels' gcov counters, reset before
the kill, show the recovery code that ran.

With ``--stack pcmk`` the cluster runs the userspace stack instead of o2cb: corosync,
dlm_controld and the kernel's fs/dlm; the lab fences the dead node (powers it off) before
the DLM recovers.

Run: .venv/bin/python examples/vm_kill.py [--nodes N] [--repeat N] [--stack o2cb|pcmk]
     [--out DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import ocfs2lab
from ocfs2lab.experiment import report_dict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=3, help="VM nodes (default 3)")
    parser.add_argument("--repeat", type=int, default=1, help="kills to run (default 1)")
    parser.add_argument("--stack", choices=["o2cb", "pcmk"], default="o2cb", help="cluster stack")
    parser.add_argument("--out", type=Path, default=Path("vm-kill-results"), help="output dir")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    # --8<-- [start:cluster]
    ocfs2lab.show_progress()  # print each phase (image, boots, deploy, ...) as it happens
    with ocfs2lab.VmCluster(args.nodes, name="killdemo", stack=args.stack) as cluster:
        print(cluster.status())
        # --8<-- [end:cluster]
        # --8<-- [start:reset]
        coverage = cluster.coverage()
        coverage.reset()
        # --8<-- [end:reset]
        # --8<-- [start:experiment]
        experiment = ocfs2lab.RecoveryExperiment(cluster, fault="kill", victim=args.nodes)
        series = experiment.run(repeat=args.repeat)
        for report in series.reports:
            print(report.summary())
        print(json.dumps(series.stats(), indent=1))
        # --8<-- [end:experiment]
        # --8<-- [start:plot]
        first = series.reports[0]
        figure = cluster.timeline.plot(
            origin=first.fault_time,
            since=first.fault_time - 5,
            until=first.fault_time + first.duration,
            unknown=False,
            title=f"kill of node {args.nodes}: the survivors' kernels",
        )
        figure.savefig(args.out / "timeline.png")
        cluster.timeline.save_jsonl(args.out / "timeline.jsonl")
        # --8<-- [end:plot]
        # --8<-- [start:coverage]
        result = coverage.report(args.out / "coverage")
        print("coverage:", result.one_line())
        # o2cb recovers in o2dlm and heartbeats on the disk; pcmk hears from fs/dlm.
        ran_here: tuple[str, ...] = ("dlm/dlmrecovery.c", "cluster/heartbeat.c")
        if args.stack == "pcmk":
            ran_here = ("stack_user.c",)
        for path in ("journal.c", *ran_here):
            ran = result["kernel"].file(path)
            print(f"{path}: {ran.lines_covered} of {ran.lines_total} lines ran")
        # --8<-- [end:coverage]
        (args.out / "reports.json").write_text(
            json.dumps([report_dict(r) for r in series.reports], indent=1, default=str)
        )
    print(f"results in {args.out}")


if __name__ == "__main__":
    main()
