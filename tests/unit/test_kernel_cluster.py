"""One-kernel-per-node clusters: bad input fails before any command, checks run in order.

A scripted runner stands in for the machines here only to check what is (not) run; the
real capabilities are tested in tests/lab (test_vm_cluster.py, test_ssh_cluster.py).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, cast, get_args

import pytest

from ocfs2lab.clusters import VM_NETWORK, VM_TIMING, FaultName, SshCluster, VmCluster
from ocfs2lab.errors import HostError, LifecycleError, OwnershipError, SpecError, TransportError
from ocfs2lab.experiment import DiskStall, Fault, Freeze, Kill, Partition, RecoveryExperiment
from ocfs2lab.experiment.faults import FAULTS
from ocfs2lab.node.base import DiskControl, Freezable, Killable, LinkControl, Power, capable
from ocfs2lab.node.container import ContainerNode, ContainerSettings
from ocfs2lab.node.ssh import SshNode
from ocfs2lab.node.vm import VmNode, interconnect_mac
from ocfs2lab.observe.timeline import LabEventKind, Timeline
from ocfs2lab.runner.ssh import SshRunner
from ocfs2lab.spec.cluster import ClusterSpec, NetworkSpec, NodeSpec
from ocfs2lab.vm.qemu import DriveSpec
from ocfs2lab.vm.recipe import ImageRecipe, LabImage
from tests.support.fake import FakeRunner

SPEC = ClusterSpec.of_size(3, name="lab", network=VM_NETWORK, timing=VM_TIMING)


def ssh_nodes(runner: FakeRunner) -> list[SshNode]:
    return [SshNode(n, runner=cast(SshRunner, runner)) for n in SPEC.nodes]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"nodes": 0}, "cluster.nodes"),
        ({"name": "bad-name"}, "cluster.name"),
        ({"disk_size": "10M"}, "disk_size"),
        ({"disk_size": "lots"}, "size"),
        ({"memory_mib": 100}, "memory_mib"),
        ({"cpus": 0}, "cpus"),
        ({"heartbeat_mode": "sometimes"}, "heartbeat.mode"),
    ],
)
def test_vm_cluster_refuses_bad_input_at_construction(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        VmCluster(**kwargs)
    assert info.value.field == field


def test_vm_cluster_defaults() -> None:
    cluster = VmCluster(3)
    assert [str(n.address) for n in cluster.spec.nodes] == [
        "192.168.77.11",
        "192.168.77.12",
        "192.168.77.13",
    ]
    assert cluster.spec.timing == VM_TIMING == VmCluster.default_timing
    assert cluster.device == "/dev/disk/by-id/virtio-ocfs2lab-shared"
    assert cluster.owned


def test_ssh_cluster_bad_input() -> None:
    with pytest.raises(SpecError):
        SshCluster([], "/dev/vdb")
    runner = FakeRunner()
    with pytest.raises(SpecError) as info:
        SshCluster(ssh_nodes(runner), "vdb")
    assert info.value.field == "device"
    assert runner.calls == []


def test_a_device_the_lab_does_not_own_is_refused_before_any_command() -> None:
    runner = FakeRunner()
    cluster = SshCluster(ssh_nodes(runner), "/dev/vdb", network=VM_NETWORK)
    with pytest.raises(LifecycleError) as info:
        cluster.__enter__()
    assert isinstance(info.value.__cause__, OwnershipError)
    assert runner.calls == []


def _machine(boot_ids: list[str], hostname: str | None = None) -> FakeRunner:
    ids = iter(boot_ids)
    addrs = (
        '[{"ifname": "enp0s4", "addr_info": [{"family": "inet", "local": "192.168.77.11", '
        '"prefixlen": 24}, {"family": "inet", "local": "192.168.77.12", "prefixlen": 24}, '
        '{"family": "inet", "local": "192.168.77.13", "prefixlen": 24}]}]'
    )
    return FakeRunner(
        [
            (r"^uname -n", lambda a, i: (0, (hostname or "ocfs2-node-1") + "\n")),
            (r"boot_id", lambda a, i: (0, next(ids) + "\n")),
            (r"^ip -j -4 addr", (0, addrs)),
        ]
    )


def test_check_nodes_names_a_hostname_mismatch() -> None:
    runner = _machine(["a", "b", "c"], hostname="somehost")
    cluster = SshCluster(ssh_nodes(runner), "/dev/vdb", network=VM_NETWORK, owned=True)
    with pytest.raises(LifecycleError, match="hostname is 'somehost'"):
        cluster.check_nodes()
    assert not any("o2cb" in line for line in runner.lines())


def test_check_nodes_refuses_nodes_that_share_a_kernel() -> None:
    nodes = []
    for spec, boot in zip(SPEC.nodes, ["k1", "k1", "k2"], strict=True):
        runner = _machine([boot], hostname=spec.name)
        nodes.append(SshNode(spec, runner=cast(SshRunner, runner)))
    cluster = SshCluster(nodes, "/dev/vdb", network=VM_NETWORK, owned=True)
    with pytest.raises(HostError, match="share a kernel"):
        cluster.check_nodes()


def _vm_node(tmp_path: Path, timeline: Timeline, index: int = 2) -> VmNode:
    image = LabImage(
        tmp_path / "root.img", tmp_path / "vmlinuz", tmp_path / "initrd", ImageRecipe()
    )
    shared = DriveSpec("shared", tmp_path / "shared.raw", "ocfs2lab-shared")
    return VmNode(
        SPEC.nodes[index],
        image,
        network=VM_NETWORK,
        shared=shared,
        switch=tmp_path,
        timeline=timeline,
    )


def _container_node() -> ContainerNode:
    settings = ContainerSettings(image="ocfs2-node:latest", devices=["/dev/drbd0"])
    return ContainerNode(
        cast(Any, None), SPEC.nodes[0], SPEC.network, settings, lab_id="lab0000000000"
    )


@pytest.mark.parametrize("fault", [Kill, Freeze, Partition, DiskStall])
def test_a_fault_on_a_node_without_its_capability_is_refused_before_anything(
    fault: type[Fault],
) -> None:
    runner = FakeRunner()
    node = ssh_nodes(runner)[0]
    with pytest.raises(SpecError) as info:
        fault(node)
    assert info.value.field == "fault.node"
    assert fault.needs.__name__ in str(info.value)
    assert "SSH machines" in str(info.value)
    assert runner.calls == []


def test_a_container_node_has_dockers_capabilities_but_no_disk_control() -> None:
    node = _container_node()
    assert [capable(node, c) for c in (Killable, Freezable, LinkControl)] == [True] * 3
    assert not capable(node, DiskControl) and not capable(node, Power)
    with pytest.raises(SpecError, match="DiskControl") as info:
        DiskStall(node)
    assert "without QEMU" in str(info.value)


def test_capabilities_are_looked_up_without_running_properties() -> None:
    class Probe:
        @property
        def running(self) -> bool:
            raise AssertionError("a property ran")

        def kill(self) -> None: ...

    assert capable(Probe(), Killable)
    assert not capable(Probe(), Power)
    assert not capable(Probe(), Freezable)


class FreezableNode:
    """A node with the freeze capability only: what a fault sees of a node."""

    kind = "vm"
    spec = SPEC.nodes[0]

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.running = True

    def freeze(self) -> None:
        self.calls.append("freeze")

    def thaw(self) -> None:
        self.calls.append("thaw")


def test_a_fault_records_its_start_and_end() -> None:
    timeline = Timeline()
    node = FreezableNode()
    with Freeze(cast(Any, node), timeline) as fault:
        node.calls.append("inside")
    assert node.calls == ["freeze", "inside", "thaw"]
    kinds = [e.kind for e in timeline.events(source="lab")]
    assert kinds == [LabEventKind.FAULT_INJECTED, LabEventKind.FAULT_HEALED]
    assert fault.injected_at is not None and fault.healed_at is not None
    assert fault.healed_at >= fault.injected_at
    assert timeline.events(source="lab")[0].lab.data["fault"] == "freeze"  # type: ignore[union-attr]
    with pytest.raises(SpecError, match="LinkControl"):
        Partition(cast(Any, node), timeline)


def test_a_fault_on_a_node_that_died_under_it_restores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    timeline = Timeline()
    vm = _vm_node(tmp_path, timeline)
    monkeypatch.setattr(vm, "cut_link", lambda: None)
    monkeypatch.setattr(vm, "heal_link", lambda: pytest.fail("healed a dead node"))
    with Partition(vm, timeline):
        pass  # the node is not running (never booted here): as if it fenced itself
    healed = timeline.events(LabEventKind.FAULT_HEALED)
    assert len(healed) == 1 and "down" in healed[0].text


def test_a_kill_is_not_undone_on_exit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    timeline = Timeline()
    vm = _vm_node(tmp_path, timeline)
    monkeypatch.setattr(vm, "kill", lambda: None)
    with Kill(vm, timeline) as fault:
        pass
    assert fault.healed_at is None
    assert [e.kind for e in timeline.events(source="lab")] == [LabEventKind.FAULT_INJECTED]


def test_an_unbooted_vm_node_says_so(tmp_path: Path) -> None:
    vm = _vm_node(tmp_path, Timeline())
    assert not vm.running and not vm.up
    with pytest.raises(LifecycleError, match="not running"):
        vm.freeze()
    with pytest.raises(TransportError, match="not booted"):
        vm.run(["true"])
    assert interconnect_mac(3) == "52:54:00:77:00:03"
    assert interconnect_mac(258) == "52:54:00:77:01:02"


def test_recovery_experiment_bad_input(tmp_path: Path) -> None:
    runner = FakeRunner()
    on_ssh = SshCluster(ssh_nodes(runner), "/dev/vdb", network=VM_NETWORK, owned=True)
    with pytest.raises(SpecError, match="Killable") as info:
        RecoveryExperiment(on_ssh, fault="kill")
    assert info.value.field == "fault.node" and runner.calls == []
    vms = [_vm_node(tmp_path, Timeline(), i) for i in range(3)]
    cluster = SshCluster(vms, "/dev/vdb", network=VM_NETWORK, owned=True)
    with pytest.raises(SpecError, match="fault"):
        RecoveryExperiment(cluster, fault="explode")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="hold"):
        RecoveryExperiment(cluster, hold=-1)
    with pytest.raises(SpecError):
        RecoveryExperiment(cluster, victim="nobody")
    experiment = RecoveryExperiment(cluster)
    assert experiment.victim.spec.name == "ocfs2-node-3"
    assert [n.spec.number for n in experiment.survivors] == [1, 2]
    with pytest.raises(SpecError, match="repeat"):
        experiment.run(repeat=0)
    single = SshCluster(vms[:1], "/dev/vdb", network=VM_NETWORK, owned=True)
    with pytest.raises(SpecError, match="2 nodes"):
        RecoveryExperiment(single)


def test_an_interconnect_without_a_gateway_allows_the_first_address() -> None:
    spec = NodeSpec(name="node1", number=1, address="10.0.0.1")
    nodes = [SshNode(spec, runner=cast(SshRunner, FakeRunner()))]
    cluster = SshCluster(nodes, "/dev/vdb", owned=True)
    assert cluster.spec.network.subnet == ipaddress.IPv4Network("10.0.0.0/24")
    assert not cluster.spec.network.reserve_gateway
    # A Docker network keeps its gateway address to itself.
    with pytest.raises(SpecError, match="gateway"):
        ClusterSpec(name="lab", nodes=(spec,), network=NetworkSpec(subnet="10.0.0.0/24"))


@pytest.mark.parametrize("name", get_args(FaultName))
def test_each_fault_is_a_method_of_its_name(tmp_path: Path, name: str) -> None:
    """`RecoveryExperiment(cluster, fault="disk_stall")` and `with cluster.disk_stall(3):`:
    each fault the experiment takes is a context manager on the cluster by the same name."""
    vm = _vm_node(tmp_path, Timeline())
    cluster = SshCluster([vm], "/dev/vdb", network=VM_NETWORK, owned=True)
    fault = getattr(cluster, name)(vm)
    assert fault.name == name
    assert type(fault) is type(cluster.fault(name, vm))  # type: ignore[arg-type]
    assert type(fault) is FAULTS[name]


def test_a_node_without_power_is_not_revived_and_nothing_runs() -> None:
    runner = FakeRunner()
    cluster = SshCluster(ssh_nodes(runner), "/dev/vdb", network=VM_NETWORK, owned=True)
    with pytest.raises(SpecError, match="cannot be revived"):
        cluster.revive(2)
    with pytest.raises(SpecError, match="kill, freeze"):
        cluster.fault("explode", 1)  # type: ignore[arg-type]
    assert runner.calls == []


def test_a_vm_clusters_machines_record_on_the_clusters_timeline() -> None:
    """An empty timeline is falsy (it has a length): the cluster's own must still be used."""
    timeline = Timeline()
    cluster = VmCluster(2)
    assert cluster.machines.timeline is cluster.timeline
    ssh = SshCluster(ssh_nodes(FakeRunner())[:2], "/dev/vdb", network=VM_NETWORK, timeline=timeline)
    assert ssh.timeline is timeline
