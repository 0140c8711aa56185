"""Specs reject bad input at construction, naming the field, the value and the rule."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocfs2lab.errors import Ocfs2LabError, SpecError
from ocfs2lab.spec.cluster import ClusterSpec, NetworkSpec, NodeSpec, TimingSpec
from ocfs2lab.spec.rules import parse_size
from ocfs2lab.spec.storage import DrbdSpec, HeartbeatSpec, VolumeSpec


def test_seed_defaults() -> None:
    spec = ClusterSpec.of_size(3)
    assert spec.network.name == "ocfs2-network"
    assert spec.network.subnet == ipaddress.IPv4Network("172.20.0.0/16")
    assert [str(n.address) for n in spec.nodes] == ["172.20.0.11", "172.20.0.12", "172.20.0.13"]
    assert [n.name for n in spec.nodes] == ["ocfs2-node-1", "ocfs2-node-2", "ocfs2-node-3"]
    assert [n.number for n in spec.nodes] == [1, 2, 3]
    drbd = DrbdSpec()
    assert drbd.size == 4 << 30
    assert drbd.backing_file == "/var/lib/drbd/ocfs2-resource_backing.img"
    assert drbd.resource_file == "/etc/drbd.d/ocfs2-resource.res"
    assert drbd.device == "/dev/drbd0"
    assert VolumeSpec().label == "ocfs2vol"


BAD: list[tuple[str, Callable[[], object], str]] = [
    ("cluster.name", lambda: ClusterSpec.of_size(2, name="my-cluster"), "letters and digits"),
    ("cluster.name", lambda: ClusterSpec.of_size(2, name="a" * 17), "16"),
    ("cluster.name", lambda: ClusterSpec.of_size(2, name=""), "16"),
    ("cluster.nodes", lambda: ClusterSpec.of_size(256), "255"),
    ("cluster.nodes", lambda: ClusterSpec.of_size(0), "255"),
    (
        "node.address",
        lambda: ClusterSpec(name="c", nodes=[NodeSpec("a", 1, "10.1.2.3")]),
        "inside the network's subnet",
    ),
    (
        "node.address",
        lambda: ClusterSpec(name="c", nodes=[NodeSpec("a", 1, "172.20.0.1")]),
        "gateway",
    ),
    (
        "node.number",
        lambda: ClusterSpec(
            name="c", nodes=[NodeSpec("a", 1, "172.20.0.11"), NodeSpec("b", 1, "172.20.0.12")]
        ),
        "appears twice",
    ),
    (
        "node.name",
        lambda: ClusterSpec(
            name="c", nodes=[NodeSpec("a", 1, "172.20.0.11"), NodeSpec("a", 2, "172.20.0.12")]
        ),
        "appears twice",
    ),
    ("node.address", lambda: NodeSpec("a", 1, "300.1.1.1"), "IPv4"),
    ("node.name", lambda: NodeSpec("bad_name", 1, "172.20.0.11"), "host name"),
    ("node.number", lambda: NodeSpec("a", 255, "172.20.0.11"), "0 to 254"),
    ("network.subnet", lambda: NetworkSpec(subnet="172.20.0.1/16"), "CIDR"),
    ("network.name", lambda: NetworkSpec(name="-x"), "letter or digit"),
    ("drbd.size", lambda: DrbdSpec(size=0), "above zero"),
    ("drbd.size", lambda: DrbdSpec(size="10M"), "at least 256 MiB"),
    ("size", lambda: DrbdSpec(size="4 parsecs"), "4G"),
    ("drbd.minor", lambda: DrbdSpec(minor=-1), "0 to"),
    ("drbd.backing_file", lambda: DrbdSpec(backing_file="relative.img"), "absolute"),
    ("drbd.name", lambda: DrbdSpec(name="a b"), "letters"),
    ("timing.dead_threshold", lambda: TimingSpec(dead_threshold=2), "O2HB_MIN_DEAD_THRESHOLD"),
    ("timing.idle_timeout_ms", lambda: TimingSpec(idle_timeout_ms=1000), "keepalive"),
    ("timing.reconnect_delay_ms", lambda: TimingSpec(reconnect_delay_ms=0), "from 1"),
    ("heartbeat.mode", lambda: HeartbeatSpec(mode="disk"), "'local', 'global'"),  # type: ignore[arg-type]
    ("heartbeat.device", lambda: HeartbeatSpec(device="sdb"), "absolute"),
    ("volume.label", lambda: VolumeSpec(label="x" * 64), "63"),
    ("volume.slots", lambda: VolumeSpec(slots=0), "1 to 255"),
    ("volume.block_size", lambda: VolumeSpec(block_size=3000), "power of two"),
    ("volume.cluster_size", lambda: VolumeSpec(cluster_size=2048), "power of two"),
    ("volume.mount_point", lambda: VolumeSpec(mount_point="mnt"), "absolute"),
    ("volume.mount_options", lambda: VolumeSpec(mount_options=("a,b",)), "one word"),
]


@pytest.mark.parametrize(
    ("field", "build", "rule"), BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)]
)
def test_bad_input_names_field_and_rule(field: str, build: Callable[[], object], rule: str) -> None:
    with pytest.raises(SpecError) as info:
        build()
    err = info.value
    assert isinstance(err, Ocfs2LabError)
    assert err.field == field
    assert field in str(err)
    assert rule in str(err)


def test_specs_are_frozen() -> None:
    spec = ClusterSpec.of_size(2)
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]


def test_node_lookup() -> None:
    spec = ClusterSpec.of_size(3)
    assert spec.node(2).name == "ocfs2-node-2"
    assert spec.node("ocfs2-node-3").number == 3
    with pytest.raises(SpecError) as info:
        spec.node(9)
    assert (info.value.field, info.value.value) == ("node", 9)
    assert "is not a node of this cluster" in str(info.value)


def test_small_subnet_runs_out_of_addresses() -> None:
    with pytest.raises(SpecError, match="too small"):
        ClusterSpec.of_size(5, network=NetworkSpec(subnet="10.9.0.0/28"))


def test_dead_after_is_threshold_times_two_seconds() -> None:
    assert TimingSpec(dead_threshold=7).dead_after_s == 14.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4G", 4 << 30),
        ("512MiB", 512 << 20),
        ("1.5G", 3 << 29),
        ("2GB", 2_000_000_000),
        (1024, 1024),
    ],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@given(st.text(max_size=20))
def test_parse_size_never_crashes_on_junk(text: str) -> None:
    try:
        value = parse_size(text)
    except SpecError:
        return
    assert value >= 0


@given(st.integers(min_value=1, max_value=254))
def test_any_legal_node_count_builds(count: int) -> None:
    spec = ClusterSpec.of_size(count)
    assert len(spec.nodes) == count
    assert len({n.address for n in spec.nodes}) == count
