"""Cluster and O2cbCluster: bad input touches nothing; waits really wait.

Order and input checks only: the deployment itself is tested for real in tests/lab.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ocfs2lab.clusters import Cluster
from ocfs2lab.errors import SpecError, WaitTimeout
from ocfs2lab.fs.o2cb import O2cbCluster
from ocfs2lab.fs.volume import mkfs_argv
from ocfs2lab.host.base import Machine
from ocfs2lab.node.base import NodeKind
from ocfs2lab.spec.cluster import ClusterSpec, NodeSpec
from ocfs2lab.spec.storage import DrbdSpec, VolumeSpec
from tests.support.fake import FakeRunner


class FakeHost(Machine):
    def docker(self) -> object:
        raise AssertionError("bad input must fail before Docker is asked")


BAD: list[tuple[str, Callable[[FakeHost], object]]] = [
    ("cluster.nodes", lambda h: Cluster(h, 300)),  # type: ignore[arg-type]
    ("cluster.name", lambda h: Cluster(h, 3, name="bad-name")),  # type: ignore[arg-type]
    (
        "node.address",
        lambda h: Cluster(h, ClusterSpec(name="c", nodes=[NodeSpec("n1", 1, "10.9.9.9")])),  # type: ignore[arg-type]
    ),
    ("drbd.size", lambda h: Cluster(h, 3, drbd=DrbdSpec(size=0))),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("field", "build"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_runs_no_command(field: str, build: Callable[[FakeHost], object]) -> None:
    runner = FakeRunner()
    with pytest.raises(SpecError) as info:
        build(FakeHost(runner, "fake"))
    assert info.value.field == field
    assert runner.calls == []


class FakeNode(Machine):
    def __init__(self, runner: FakeRunner, spec: NodeSpec) -> None:
        super().__init__(runner, spec.name)
        self._spec = spec

    @property
    def spec(self) -> NodeSpec:
        return self._spec

    @property
    def kind(self) -> NodeKind:
        return "container"

    @property
    def up(self) -> bool:
        return True


def test_wait_online_waits_until_every_node_is_online() -> None:
    spec = ClusterSpec.of_size(2, name="lab")
    answers = iter(["offline", "offline", "online", "online", "online", "online"])
    runner = FakeRunner(
        [(r"cluster-status", lambda a, i: (0, f"Cluster 'lab' is {next(answers)}\n"))]
    )
    nodes = [FakeNode(runner, n) for n in spec.nodes]
    o2 = O2cbCluster(nodes, spec, online_timeout=30)
    o2.wait_online()
    assert sum("cluster-status" in c for c in runner.lines()) >= 4


def test_wait_online_gives_up_on_an_offline_node() -> None:
    spec = ClusterSpec.of_size(2, name="lab")
    runner = FakeRunner([(r"cluster-status", (1, "Cluster 'lab' is offline\n"))])
    nodes = [FakeNode(runner, n) for n in spec.nodes]
    with pytest.raises(WaitTimeout):
        O2cbCluster(nodes, spec, online_timeout=0.3).wait_online()


def test_mkfs_argv_global_heartbeat_flag() -> None:
    local = mkfs_argv(VolumeSpec(), "/dev/drbd0", "lab", 3)
    assert local == [
        "mkfs.ocfs2",
        "--cluster-stack=o2cb",
        "--cluster-name=lab",
        "-N",
        "3",
        "-L",
        "ocfs2vol",
        "/dev/drbd0",
    ]
    glob = mkfs_argv(VolumeSpec(), "/dev/drbd0", "lab", 3, global_heartbeat=True)
    assert glob[-2:] == ["--global-heartbeat", "/dev/drbd0"]
