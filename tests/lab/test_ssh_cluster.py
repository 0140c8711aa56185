"""SSH nodes for real: lab VMs addressed only by SSH, as users' own machines would be.

The lab boots two VMs and stops there; the cluster is then deployed on plain
:class:`SshNode` objects that know nothing but each machine's SSH address and key. Their
kernel messages reach the timeline by ``dmesg`` polled over SSH, their writers report to
the recorder through an SSH reverse forward. A node is then killed from outside the
cluster (as a power failure would be) and the survivor's log shows the recovery.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from ocfs2lab.cleanup import census
from ocfs2lab.clusters import VM_TIMING, SshCluster, VmCluster
from ocfs2lab.errors import HostError, LifecycleError, OwnershipError, SpecError
from ocfs2lab.formats.kmsg import EventKind
from ocfs2lab.node.background import RemoteProcess
from ocfs2lab.node.ssh import SshNode
from ocfs2lab.observe.recorder import WriteRecorder, runner_reader, writer_script
from ocfs2lab.observe.timeline import Expect, LabEventKind
from tests.support.procs import sigkill_when

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def machines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmCluster]:
    """Two lab VMs, booted and nothing more."""
    with VmCluster(2, name="sshlab", deploy=False, log_dir=tmp_path_factory.mktemp("ssh")) as vms:
        yield vms


@pytest.fixture
def made() -> Iterator[list[SshNode]]:
    """SSH nodes a test makes; their connections are closed after it."""
    nodes: list[SshNode] = []
    yield nodes
    for node in nodes:
        node.close()


def test_an_ssh_node_must_be_named_as_its_machine(machines: VmCluster, made: list[SshNode]) -> None:
    vm1, vm2 = machines.vms
    swapped = [SshNode(vm2.spec, vm1.target), SshNode(vm1.spec, vm2.target)]
    made.extend(swapped)
    cluster = SshCluster(swapped, machines.device, network=machines.spec.network, owned=True)
    with pytest.raises(LifecycleError, match="hostname is 'ocfs2-node-1'") as info:
        cluster.__enter__()
    assert info.value.step == "check nodes"
    # Nothing was changed on the machines: no cluster registered.
    for vm in machines.vms:
        assert not vm.exists("/sys/kernel/config/cluster/ocfs2cluster")


def test_a_device_that_is_not_the_labs_is_not_formatted(
    machines: VmCluster, made: list[SshNode]
) -> None:
    nodes = [SshNode(vm.spec, vm.target) for vm in machines.vms]
    made.extend(nodes)
    cluster = SshCluster(nodes, machines.device, network=machines.spec.network, owned=False)
    with pytest.raises(LifecycleError, match="refusing to wipe") as info:
        cluster.__enter__()
    assert isinstance(info.value.__cause__, OwnershipError)
    assert not any(vm.exists("/sys/kernel/config/cluster/ocfs2cluster") for vm in machines.vms)


def test_faults_need_power_control(machines: VmCluster, made: list[SshNode]) -> None:
    nodes = [SshNode(vm.spec, vm.target) for vm in machines.vms]
    made.extend(nodes)
    cluster = SshCluster(nodes, machines.device, network=machines.spec.network, owned=True)
    for fault in ("kill", "freeze", "partition", "disk_stall"):
        with pytest.raises(SpecError, match="no power, CPU, link or disk control") as info:
            cluster.fault(fault, 2)
        assert info.value.field == "fault.node"
    with pytest.raises(SpecError, match="cannot be revived"):
        cluster.revive(2)


def test_ssh_nodes_deploy_report_writes_recover_from_a_power_failure_and_rejoin(
    machines: VmCluster, made: list[SshNode]
) -> None:
    nodes = [SshNode(vm.spec, vm.target) for vm in machines.vms]
    made.extend(nodes)
    assert all(n.kind == "ssh" for n in nodes)
    with SshCluster(
        nodes,
        machines.device,
        name="sshlab",
        network=machines.spec.network,
        timing=VM_TIMING,
        owned=True,
    ) as cluster:
        status = cluster.status()
        assert status.kernel_nodes == 2 and status.mounted == status.nodes
        first, second = nodes
        first.put_file("/mnt/ocfs2/over-ssh", b"from node 1\n")
        assert second.get_file("/mnt/ocfs2/over-ssh") == b"from node 1\n"
        # Mount messages arrived through dmesg polled over ssh.
        mounts = cluster.timeline.events(EventKind.OCFS2_MOUNT)
        assert {e.node for e in mounts} == {"ocfs2-node-1", "ocfs2-node-2"}

        with WriteRecorder(timeline=cluster.timeline) as recorder:
            writers = []
            for node in nodes:
                node.put_file("/var/tmp/writer.py", writer_script().read_bytes(), 0o755)
                argv = recorder.writer_argv(
                    node=node.spec.name,
                    file=f"/mnt/ocfs2/w-{node.spec.name}.dat",
                    address=node.recorder_address(recorder),  # an ssh reverse forward
                    script="/var/tmp/writer.py",
                )
                writers.append(RemoteProcess.start(node, argv, log_path="/var/tmp/writer.log"))
            for node in nodes:
                recorder.wait_for_acks(20, node=node.spec.name, timeout=120)
            # A power failure of machine 2, from outside the cluster.
            killed_at = cluster.timeline.now()
            machines.vm(2).kill()
            cluster.timeline.record(LabEventKind.FAULT_INJECTED, "power off", node="ocfs2-node-2")
            cluster.timeline.expect(
                Expect(EventKind.DLM_EVICTED, node="ocfs2-node-1", about=2),
                Expect(EventKind.RECOVERY_END, node="ocfs2-node-1"),
                Expect(EventKind.JOURNAL_REPLAY_END, node="ocfs2-node-1", about=2),
                after=killed_at,
                timeout=300,
            )
            assert not second.up
            writers[0].stop()
            report = recorder.verify(runner_reader(first.runner))
            assert report.ok and report.acknowledged > 40, report.summary()
        with pytest.raises(HostError, match="down"):
            cluster.rejoin(second)
        # Machine 2 boots again (as an admin would bring it back) and rejoins over ssh.
        # (A lab VM comes back on another forwarded port; a real machine keeps its address
        # and needs only reconnect().)
        machines.vm(2).revive()
        second.reconnect(machines.vm(2).target)
        cluster.rejoin(second)
        assert second.get_file("/mnt/ocfs2/over-ssh") == b"from node 1\n"
        assert cluster.status().mounted == ("ocfs2-node-1", "ocfs2-node-2")
    # Teardown undid everything on both machines.
    for node in (first, second):
        assert not node.exists("/sys/kernel/config/cluster/sshlab")
        assert not node.run(["mountpoint", "-q", "/mnt/ocfs2"], check=False).ok


# -- users' machines are left exactly as found ----------------------------------------------

#: A cluster.conf of the machine's own (another cluster), and a file the lab never writes.
FOREIGN_CONF = b"cluster:\n\tnode_count = 0\n\tname = theirs\n"
FOREIGN_FILE = "/etc/ocfs2lab-test-foreign"

KILLED_DEPLOY = """
import sys, time
from ocfs2lab.clusters import SshCluster, VM_NETWORK, VM_TIMING
from ocfs2lab.node.ssh import SshNode
from ocfs2lab.runner.ssh import SshTarget
from ocfs2lab.spec.cluster import ClusterSpec
key, device, ports = sys.argv[1], sys.argv[2], sys.argv[3:]
spec = ClusterSpec.of_size(len(ports), name="sshkill", network=VM_NETWORK)
nodes = [
    SshNode(n, SshTarget("127.0.0.1", int(p), identity_file=key))
    for n, p in zip(spec.nodes, ports)
]
SshCluster(
    nodes, device, name="sshkill", network=VM_NETWORK, timing=VM_TIMING, owned=True,
    force=True, lab_id="labsshkill",
).__enter__()
print("deployed", flush=True)
time.sleep(3600)
"""


def machine_state(node: SshNode) -> dict[str, object]:
    """What the lab must leave as it found it: files, mounts, modules, configfs, daemons."""
    mounts = node.run(["cat", "/proc/mounts"]).stdout.splitlines()
    units = ["corosync", "dlm", "ocfs2lab-logfwd"]
    return {
        "conf": node.get_file("/etc/ocfs2/cluster.conf"),
        "corosync.conf": node.run(["cat", "/etc/corosync/corosync.conf"], check=False).stdout,
        "dlm": node.run(["ls", "-A", "/etc/dlm", "/usr/local/sbin"], check=False).stdout,
        "daemons": node.run(["systemctl", "is-active", *units], check=False).stdout,
        "foreign": node.get_file(FOREIGN_FILE),
        "mounts": sorted(tuple(line.split()[:3]) for line in mounts),
        "modules": sorted(node.loaded_modules()),
        "clusters": node.run(["ls", "-A", "/sys/kernel/config/cluster"], check=False).stdout,
        "lab files": node.run(["ls", "-A", "/var/lib/ocfs2lab"], check=False).stdout,
    }


@pytest.fixture
def found(machines: VmCluster, made: list[SshNode]) -> Iterator[list[SshNode]]:
    """SSH nodes whose machines hold a cluster.conf and a file of their own."""
    nodes = [SshNode(vm.spec, vm.target) for vm in machines.vms]
    made.extend(nodes)
    for node in nodes:
        node.run(["mkdir", "-p", "/etc/ocfs2"])
        node.put_file("/etc/ocfs2/cluster.conf", FOREIGN_CONF, 0o640)
        node.put_file(FOREIGN_FILE, b"the user's\n")
    yield nodes
    for node in nodes:
        node.run(["rm", "-rf", "/etc/ocfs2", FOREIGN_FILE], check=False)


def _kill_when(proc: subprocess.Popen[bytes], node: SshNode, entry: str) -> None:
    """SIGKILL the deploy once ``entry`` stands in the lab's ledger on ``node``."""
    ledger = "/var/lib/ocfs2lab/labs/labsshkill.json"
    sigkill_when(
        proc,
        lambda: entry in node.run(["cat", ledger], check=False).stdout,
        f"the deploy to record {entry}",
    )


def test_users_machines_are_left_exactly_as_found(
    machines: VmCluster, found: list[SshNode]
) -> None:
    before = {n.spec.name: machine_state(n) for n in found}
    key = str(machines.vms[0].target.identity_file)
    ssh = [arg for vm in machines.vms for arg in ("--ssh", f"root@127.0.0.1:{vm.target.port}")]
    cli = [sys.executable, "-m", "ocfs2lab.cli"]

    # Refused without force, before any command changed a machine.
    refused = SshCluster(found, machines.device, network=machines.spec.network, owned=True)
    with pytest.raises(LifecycleError, match=r"cluster\.conf exists and differs") as info:
        refused.__enter__()
    assert isinstance(info.value.__cause__, OwnershipError) and "force" in str(info.value)
    assert {n.spec.name: machine_state(n) for n in found} == before

    # A deploy killed with SIGKILL while mounting (the stack up, files written, modules
    # loaded, the mount recorded): `ocfs2lab cleanup` over the nodes gives each machine back
    # what it had. (A kill at an earlier step leaves a subset of this ledger;
    # tests/lab/test_deploy.py kills the container deployment once its containers exist.)
    ports = [str(vm.target.port) for vm in machines.vms]
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_DEPLOY, key, machines.device, *ports],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _kill_when(proc, found[0], '"fstype": "ocfs2"')
    status = subprocess.run(
        [*cli, "status", "--json", *ssh, "--key", key], check=True, capture_output=True
    )
    left = json.loads(status.stdout)
    # Node 1 at least has the ledger (the others join after its bootstrap).
    assert "labsshkill" in left[found[0].target.where]["ledgers"], left
    subprocess.run([*cli, "cleanup", *ssh, "--key", key], check=True, capture_output=True)
    assert {n.spec.name: machine_state(n) for n in found} == before

    # A whole deploy with force, and its exit: the same.
    with SshCluster(
        found,
        machines.device,
        name="sshforce",
        network=machines.spec.network,
        timing=VM_TIMING,
        owned=True,
        force=True,
    ) as cluster:
        assert cluster.status().mounted == ("ocfs2-node-1", "ocfs2-node-2")
        conf = found[0].get_file("/etc/ocfs2/cluster.conf").decode()
        assert "name = sshforce" in conf
        assert cluster.changes(found[0]).ledger is not None
    assert {n.spec.name: machine_state(n) for n in found} == before
    for node in found:
        assert census(node).lab_objects() == {}


def test_pcmk_on_users_machines_leaves_them_as_found(
    machines: VmCluster, found: list[SshNode]
) -> None:
    """The pcmk stack on SSH machines: Debian's corosync package left a corosync.conf of
    its own, refused without force; with force the cluster is deployed and mounted, the lab
    says it cannot fence these machines, and on exit each machine has its file, its
    stopped daemons and its modules back."""
    before = {n.spec.name: machine_state(n) for n in found}
    assert "inactive" in str(before["ocfs2-node-1"]["daemons"])
    refused = SshCluster(
        found, machines.device, network=machines.spec.network, owned=True, stack="pcmk"
    )
    with pytest.raises(LifecycleError, match=r"corosync\.conf exists and differs") as info:
        refused.__enter__()
    assert isinstance(info.value.__cause__, OwnershipError)
    assert {n.spec.name: machine_state(n) for n in found} == before
    with SshCluster(
        found,
        machines.device,
        name="sshpcmk",
        network=machines.spec.network,
        owned=True,
        force=True,
        stack="pcmk",
    ) as cluster:
        status = cluster.status()
        assert status.online == status.mounted == ("ocfs2-node-1", "ocfs2-node-2")
        conf = found[0].run(["cat", "/etc/corosync/corosync.conf"]).stdout
        assert "cluster_name: sshpcmk" in conf and "two_node: 1" in conf
        found[0].put_file("/mnt/ocfs2/from-1", b"pcmk over ssh\n")
        assert found[1].get_file("/mnt/ocfs2/from-1") == b"pcmk over ssh\n"
        notes = [e.text for e in cluster.timeline.events(LabEventKind.NOTE)]
        assert any("cannot power ocfs2-node-1, ocfs2-node-2 off" in n for n in notes), notes
    after = {n.spec.name: machine_state(n) for n in found}
    for name, state in before.items():
        for key, value in state.items():
            assert after[name][key] == value, (name, key)
    for node in found:
        assert census(node).lab_objects() == {}
