"""The seed's deployment, end to end, in the lab VM: every step for real."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocfs2lab.cleanup import census
from ocfs2lab.clusters import Cluster
from ocfs2lab.errors import LifecycleError, OwnershipError, SpecError
from ocfs2lab.experiment.faults import CONTAINER_NOTE, Freeze, Partition
from ocfs2lab.formats.kmsg import EventKind
from ocfs2lab.host.labvm import LabVm
from ocfs2lab.node.container import LAB_LABEL
from ocfs2lab.observe.timeline import LabEventKind, Timeline
from ocfs2lab.spec.storage import DrbdSpec
from tests.support.procs import sigkill_when

pytestmark = pytest.mark.lab

SMALL = DrbdSpec(size="1G")


def assert_nothing_left(host: LabVm) -> None:
    """The census finds nothing of any lab on the host."""
    found = census(host, host.docker())
    assert found.lab_objects() == {}, found


def test_full_deploy_three_nodes(lab_host: LabVm, tmp_path: Path) -> None:
    """The seed's three nodes, in global heartbeat mode (the seed's own local mode is
    deployed by ``tests/lab/test_example_seed.py``): the formatted device is added as a
    region on node 1, its ``heartbeat:`` stanza reaches every node's cluster.conf, heartbeat
    starts before the mounts. Then the workload, coverage, Docker's faults and fsck."""
    assert_nothing_left(lab_host)
    with Cluster(lab_host, 3, name="labtest", drbd=SMALL, heartbeat_mode="global") as c:
        status = c.status()
        assert status.nodes == ("ocfs2-node-1", "ocfs2-node-2", "ocfs2-node-3")
        assert status.online == status.nodes
        assert status.mounted == status.nodes
        assert status.kernel_nodes == 1
        assert "ONE OCFS2 node" in status.note
        # The seed's network and addresses, and the DRBD device in every container.
        for k, node in enumerate(c.nodes, start=1):
            addr = node.run(["ip", "-4", "-o", "addr", "show", "eth0"]).stdout
            assert f"172.20.0.{10 + k}/16" in addr
            assert node.run(["test", "-b", "/dev/drbd0"], check=False).ok
        assert c.heartbeat is not None and c.volume is not None
        uuid = c.volume.uuid()
        assert c.heartbeat.region_uuids == [uuid]
        assert [r.uuid for r in c.heartbeat.regions(c.nodes[0]) if r.active] == [uuid]
        for node in c.nodes:
            assert c.heartbeat.mode(node) == "global"
            conf = node.get_file("/etc/ocfs2/cluster.conf").decode()
            assert "heartbeat:" in conf and f"region = {uuid}" in conf
            assert "heartbeat_mode = global" in conf
            assert "name = labtest" in conf and "ip_address = 172.20.0.13" in conf
        # A file written by node 1 is read by node 3.
        c.nodes[0].put_file("/mnt/ocfs2/from-node-1", b"written by node 1\n")
        assert c.nodes[2].get_file("/mnt/ocfs2/from-node-1") == b"written by node 1\n"
        report = c.run_workload(report_root=tmp_path)
        report.raise_if_failed()
        assert report.report_dir is not None
        tests = report.report_dir / "tests"
        assert report.report_dir.name.startswith("gcov_reports_")
        assert sorted(p.name for p in tests.iterdir()) == [
            "ocfs2-node-1.log",
            "ocfs2-node-2.log",
            "ocfs2-node-3.log",
            "results.json",
        ]
        ops = {ch.op for r in report.results for ch in r.checks}
        assert ops == {"write", "readback", "read-other"}
        # Coverage, reset between two runs: different workloads, different numbers.
        coverage = c.coverage()
        coverage.reset()
        for node in c.nodes:
            node.run(["o2probe", "write", f"/mnt/ocfs2/probe.{node.spec.name}", "32"])
        first = coverage.report(tmp_path / "first", html=False)
        coverage.reset()
        c.nodes[0].run(["o2probe", "statfs", "/mnt/ocfs2"])
        second = coverage.report(tmp_path / "second", html=False)
        assert first.targets == {"kernel": ("host",), "tools": tuple(s.name for s in c.spec.nodes)}
        assert second.targets["tools"] == ("ocfs2-node-1",)
        a, b = first["kernel"], second["kernel"]
        assert a.total.lines_covered != b.total.lines_covered
        assert a.file("fs/ocfs2/file.c").lines_covered > b.file("fs/ocfs2/file.c").lines_covered
        diff = first.diff(second, "kernel")
        assert diff.count("a") > 0
        assert any(path.startswith("fs/ocfs2/") for path in diff.only_a)
        tools = first.diff(second, "tools")
        assert tools.only_a and tools.only_b  # write paths in one, statfs in the other
        # The one pipeline: nodes by name or number, and a timeline of the one kernel (the
        # host's log: every mount is the host's).
        assert c.node(2) is c.nodes[1] and c.node("ocfs2-node-3") is c.nodes[2]
        assert c.node(-1) is c.nodes[2]
        mounts = c.timeline.events(EventKind.OCFS2_MOUNT)
        assert mounts and {e.node for e in mounts} == {lab_host.name}
        with pytest.raises(SpecError, match="DiskControl"):  # no QEMU between it and the disk
            c.disk_stall(1)
        _container_faults(c)
        fsck = c.fsck()
        assert fsck.clean, fsck.output
        assert "All passes succeeded" in fsck.output
        kernel = lab_host.kernel_log()
        assert "ocfs2: Mounting device" in kernel
    assert_nothing_left(lab_host)


def _container_faults(c: Cluster) -> None:
    """Docker's faults on a container node: real, restored, and honest about what they are
    not (the containers share one kernel: no OCFS2 node dies)."""
    timeline = Timeline()
    node = c.nodes[1]
    with Freeze(node, timeline):
        assert not node.up  # paused
        assert node.container.status == "paused"
    assert node.up
    with Partition(node, timeline):
        node.container.reload()
        assert c.spec.network.name not in node.container.attrs["NetworkSettings"]["Networks"]
    node.container.reload()
    networks = node.container.attrs["NetworkSettings"]["Networks"]
    assert networks[c.spec.network.name]["IPAddress"] == str(node.spec.address)
    events = timeline.events(source="lab")
    assert [e.kind for e in events] == [
        LabEventKind.FAULT_INJECTED,
        LabEventKind.FAULT_HEALED,
        LabEventKind.FAULT_INJECTED,
        LabEventKind.FAULT_HEALED,
    ]
    assert all(e.lab is not None and e.lab.data["note"] == CONTAINER_NOTE for e in events)
    # The node's kernel (the lab VM's, shared) still has the volume mounted and working.
    assert node.get_file("/mnt/ocfs2/from-node-1") == b"written by node 1\n"
    assert c.status().kernel_nodes == 1


def test_foreign_backing_file_is_refused_and_untouched(lab_host: LabVm) -> None:
    path = "/var/tmp/someone-elses.img"
    lab_host.put_file(path, b"not the lab's\n")
    try:
        with (
            pytest.raises(LifecycleError) as info,
            Cluster(lab_host, 2, name="foreign", drbd=DrbdSpec(size="1G", backing_file=path)),
        ):
            pass
        assert isinstance(info.value.__cause__, LifecycleError)
        assert isinstance(info.value.__cause__.__cause__, OwnershipError)
        assert "drbd" in str(info.value)
        assert lab_host.get_file(path) == b"not the lab's\n"
        assert_nothing_left(lab_host)
    finally:
        lab_host.run(["rm", "-f", path])


DEPLOY_SCRIPT = """
import sys
from ocfs2lab.clusters import Cluster
from ocfs2lab.host.ssh import SshHost
from ocfs2lab.runner.ssh import SshTarget
from ocfs2lab.spec.storage import DrbdSpec
host = SshHost(SshTarget("127.0.0.1", int(sys.argv[1]), identity_file=sys.argv[2]))
with Cluster(host, 3, name="killed", drbd=DrbdSpec(size="1G"), lab_id="labkilled"):
    print("deployed", flush=True)
"""


@pytest.fixture
def foreign_objects(lab_host: LabVm) -> Iterator[str]:
    """A loop device, a file and an ext4 mount on the host that no lab created."""
    lab_host.run(["truncate", "-s", "64M", "/var/tmp/foreign.img"])
    loop = lab_host.run(["losetup", "--find", "--show", "/var/tmp/foreign.img"]).stdout.strip()
    lab_host.run(["mkfs.ext4", "-q", loop])
    lab_host.run(["mkdir", "-p", "/mnt/foreign"])
    lab_host.run(["mount", loop, "/mnt/foreign"])
    lab_host.put_file("/mnt/foreign/keep", b"keep me\n")
    yield loop
    lab_host.run(["umount", "/mnt/foreign"], check=False)
    lab_host.run(["losetup", "-d", loop], check=False)
    lab_host.run(["rm", "-f", "/var/tmp/foreign.img"], check=False)


def test_sigkill_half_way_then_cleanup(lab_host: LabVm, foreign_objects: str) -> None:
    target = lab_host.target
    proc = subprocess.Popen(
        [sys.executable, "-c", DEPLOY_SCRIPT, str(target.port), str(target.identity_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    client = lab_host.docker()
    # Kill the deploying process once its containers exist: half way, mid o2cb.
    sigkill_when(
        proc,
        lambda: len(client.containers.list(all=True, filters={"label": LAB_LABEL})) >= 3,
        "the deploy to create its containers",
    )
    ssh = ["--ssh", f"root@127.0.0.1:{target.port}", "--key", str(target.identity_file)]
    cli = [sys.executable, "-m", "ocfs2lab.cli"]
    status = subprocess.run([*cli, "status", "--json", *ssh], capture_output=True, check=True)
    (before,) = json.loads(status.stdout).values()  # one host: its census
    assert len(before["containers"]) == 3
    assert list(before["ledgers"]) == ["labkilled"]
    # `ocfs2lab cleanup`, the command a user runs after a crash.
    done = subprocess.run([*cli, "cleanup", *ssh], capture_output=True, text=True, check=True)
    assert "container ocfs2-node-1" in " ".join(done.stderr.split())
    assert_nothing_left(lab_host)
    # What the lab did not create is untouched.
    assert lab_host.run(["mountpoint", "-q", "/mnt/foreign"], check=False).ok
    assert lab_host.get_file("/mnt/foreign/keep") == b"keep me\n"
    assert foreign_objects in lab_host.run(["losetup", "-a"]).stdout
