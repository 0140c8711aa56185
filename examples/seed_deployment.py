"""The seed's deployment as a script: boot the lab VM, stand up a 3-node cluster on a
single-node DRBD device, cross a file between nodes, run the I/O test and the lab's
instrumented tool, collect gcov coverage of the kernel's OCFS2 code and of the tool into the
seed's report directory, check the file system, and tear everything down.

Run: .venv/bin/python examples/seed_deployment.py
"""

from __future__ import annotations

from pathlib import Path

import ocfs2lab


def main() -> None:
    # --8<-- [start:deploy]
    ocfs2lab.show_progress()  # print each phase (image, boot, deploy, ...) as it happens
    with (
        ocfs2lab.LabVm() as host,
        ocfs2lab.Cluster(host, 3, name="example", drbd=ocfs2lab.DrbdSpec(size="1G")) as cluster,
    ):
        # --8<-- [end:deploy]
        # --8<-- [start:status]
        status = cluster.status()
        print(f"online: {status.online}; real kernel nodes: {status.kernel_nodes}")
        print(status.note)
        # --8<-- [end:status]
        # --8<-- [start:files]
        first, last = cluster.nodes[0], cluster.nodes[-1]
        first.put_file("/mnt/ocfs2/hello", b"hello from node 1\n")
        print("node 3 reads:", last.get_file("/mnt/ocfs2/hello").decode().strip())
        # --8<-- [end:files]
        # --8<-- [start:reset]
        coverage = cluster.coverage()
        coverage.reset()
        # --8<-- [end:reset]
        # --8<-- [start:workload]
        report = cluster.run_workload(report_root=Path.cwd())
        print("workload:", "PASS" if report.ok else "FAIL", "->", report.report_dir)
        # --8<-- [end:workload]
        # --8<-- [start:probe]
        for node in cluster.nodes:
            path = f"/mnt/ocfs2/probe.{node.spec.name}"
            node.run(["o2probe", "write", path, "64"])
            node.run(["o2probe", "verify", path, "64"])
        # --8<-- [end:probe]
        # --8<-- [start:coverage]
        assert report.report_dir is not None
        result = coverage.report(report.report_dir)
        print("coverage:", result.one_line())
        print("kernel report:", result.html("kernel"))
        # --8<-- [end:coverage]
        # --8<-- [start:fsck]
        print("fsck clean:", cluster.fsck().clean)
        # --8<-- [end:fsck]


if __name__ == "__main__":
    main()
