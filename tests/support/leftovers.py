"""What a VM cluster made on this machine, and a module fixture's life of a cluster that
checks it is all gone afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ocfs2lab.clusters import VmCluster
from ocfs2lab.vm.qemu import proc_start_time


class Leftovers:
    """What a VM cluster made on this machine, to check that it is all gone."""

    def __init__(self, cluster: VmCluster) -> None:
        assert cluster.work_dir is not None and cluster.switch is not None
        self.paths: list[Path] = [cluster.work_dir, cluster.switch.directory or Path("/")]
        self.pids: list[tuple[int, int | None]] = []
        switch_pid = cluster.switch.pid
        assert switch_pid is not None
        self.pids.append((switch_pid, proc_start_time(switch_pid)))
        for vm in cluster.vms:  # each node's link: a port switch and a wirefilter
            link = vm.link
            if link is None or link.port is None or link.port.directory is None:
                continue
            self.paths.append(link.port.directory)
            for pid in (link.port.pid, link.process.pid if link.process else None):
                if pid is not None:
                    self.pids.append((pid, proc_start_time(pid)))
        self.add_machines(cluster)

    def add_machines(self, cluster: VmCluster) -> None:
        for vm in cluster.vms:
            machine = vm.machine
            if machine is None or machine.pid is None:
                continue
            self.pids.append((machine.pid, proc_start_time(machine.pid)))
            for path in (machine.work_dir, machine.socket_dir, machine.overlay):
                if path is not None:
                    self.paths.append(path)

    def remaining(self) -> list[str]:
        left = [str(p) for p in self.paths if p.exists()]
        for pid, start in self.pids:
            if start is not None and proc_start_time(pid) == start:
                left.append(f"pid {pid}")
        return left


def module_cluster(cluster: VmCluster, logs: Path) -> Iterator[VmCluster]:
    """Enter ``cluster``, yield it, save its timeline in ``logs`` and check that nothing it
    made remains: no QEMU process, overlay, switch or socket (revived machines too)."""
    with cluster:
        leftovers = Leftovers(cluster)
        yield cluster
        leftovers.add_machines(cluster)  # the machines of revived nodes too
        cluster.timeline.save_jsonl(logs / "timeline.jsonl")
    assert leftovers.remaining() == []
