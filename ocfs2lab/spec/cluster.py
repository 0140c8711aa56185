"""Specs of the cluster: its network, its nodes and the kernel's timing knobs.

Specs are frozen and validated when built: bad input raises
[`SpecError`][ocfs2lab.errors.SpecError] before anything on any machine is touched.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from attrs import Attribute, field, frozen

from ocfs2lab.errors import SpecError
from ocfs2lab.spec import rules

DEFAULT_NETWORK = "ocfs2-network"
DEFAULT_SUBNET = "172.20.0.0/16"
O2NET_PORT = 7777


def _subnet(value: str | ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    return rules.ipv4_network("network.subnet")(value)


def _node_address(value: str | ipaddress.IPv4Address) -> ipaddress.IPv4Address:
    return rules.ipv4_address("node.address")(value)


def _node_tuple(nodes: Iterable[NodeSpec]) -> tuple[NodeSpec, ...]:
    return tuple(nodes)


@frozen
class NetworkSpec:
    """The network the nodes talk on (for container nodes, a Docker network).

    Attributes:
        name: Network name (Docker's naming rules).
        subnet: IPv4 subnet in CIDR form.
        first_host: Node k gets the subnet's address ``first_host + k`` (the seed: .10+k).
        reserve_gateway: The subnet's first host address is the network's gateway and no
            node may have it (a Docker network); ``False`` for an interconnect without one
            (a VM cluster's switch, your own machines).
    """

    name: str = field(default=DEFAULT_NETWORK, validator=rules.docker_name)
    subnet: ipaddress.IPv4Network = field(
        default=ipaddress.IPv4Network(DEFAULT_SUBNET), converter=_subnet
    )
    first_host: int = field(default=10, validator=rules.in_range(1, 1 << 24))
    reserve_gateway: bool = True

    def __attrs_post_init__(self) -> None:
        if self.subnet.num_addresses < 4:
            raise SpecError(
                "network.subnet", str(self.subnet), "needs room for nodes (at most /30)"
            )

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The first host address, kept for the network's gateway."""
        return self.subnet.network_address + 1

    def address_for(self, k: int) -> ipaddress.IPv4Address:
        """The address of node ``k`` (1-based) in the seed's scheme.

        Raises:
            SpecError: The subnet is too small for node ``k``.
        """
        offset = self.first_host + k
        if offset >= self.subnet.num_addresses - 1:
            raise SpecError(
                "network.subnet",
                str(self.subnet),
                f"too small for node {k} at host offset {offset}",
            )
        return self.subnet.network_address + offset


@frozen
class NodeSpec:
    """One cluster node as o2cb knows it.

    Attributes:
        name: Node name; o2cb marks as local the node whose name equals the hostname.
        number: o2cb node number, 0..254.
        address: Interconnect IPv4 address.
        port: o2net TCP port (7777 by default).
    """

    name: str = field(validator=rules.hostname)
    number: int = field(validator=rules.in_range(0, rules.MAX_NODE_NUMBER, "kernel O2NM_MAX_NODES"))
    address: ipaddress.IPv4Address = field(converter=_node_address)
    port: int = field(
        default=O2NET_PORT,
        validator=rules.in_range(1, 65534, "the kernel refuses o2net ports 0 and 65535"),
    )


def _idle_after_keepalive(instance: TimingSpec, attribute: Attribute[Any], value: int) -> None:
    if value <= instance.keepalive_delay_ms:
        raise SpecError(
            "timing.idle_timeout_ms",
            value,
            f"must exceed keepalive_delay_ms ({instance.keepalive_delay_ms}): kernel refuses it",
        )


@frozen
class TimingSpec:
    """The o2hb and o2net knobs, within the kernel's limits.

    All nodes must use the same values; the kernel refuses o2net changes once a peer is
    connected, so they are set before heartbeat starts.

    Attributes:
        dead_threshold: Heartbeat iterations (2 s each) without a write before a node is
            declared dead; at least 3 (kernel ``O2HB_MIN_DEAD_THRESHOLD``; smaller writes are
            silently ignored). Default 31.
        idle_timeout_ms: o2net idle time before a connection is declared lost (default 30000).
        keepalive_delay_ms: o2net keepalive interval (default 2000); below the idle timeout.
        reconnect_delay_ms: o2net delay between connection attempts (default 2000).
    """

    dead_threshold: int = field(
        default=31,
        validator=rules.in_range(
            rules.MIN_DEAD_THRESHOLD, 1 << 30, "kernel O2HB_MIN_DEAD_THRESHOLD is 3"
        ),
    )
    keepalive_delay_ms: int = field(default=2000, validator=rules.in_range(1, 1 << 30))
    idle_timeout_ms: int = field(
        default=30000, validator=[rules.in_range(1, 1 << 30), _idle_after_keepalive]
    )
    reconnect_delay_ms: int = field(default=2000, validator=rules.in_range(1, 1 << 30))

    #: The kernel's fixed heartbeat interval (O2HB_REGION_TIMEOUT_MS).
    HEARTBEAT_INTERVAL_MS = 2000

    @property
    def dead_after_s(self) -> float:
        """Seconds after a node's last heartbeat write until it is declared dead (theory)."""
        return self.dead_threshold * self.HEARTBEAT_INTERVAL_MS / 1000


def _unique(values: list[Any], what: str, field_name: str) -> None:
    seen: set[Any] = set()
    for v in values:
        if v in seen:
            raise SpecError(
                field_name,
                v if isinstance(v, int) else str(v),
                f"each node needs its own {what}; {v} appears twice",
            )
        seen.add(v)


def _node_count(
    instance: ClusterSpec, attribute: Attribute[Any], value: tuple[NodeSpec, ...]
) -> None:
    if not 1 <= len(value) <= rules.MAX_SLOTS:
        raise SpecError(
            "cluster.nodes",
            len(value),
            f"a cluster has 1 to {rules.MAX_SLOTS} nodes (OCFS2's slot limit)",
        )


@frozen
class ClusterSpec:
    """An o2cb cluster: name, nodes, network and timing.

    Build one from a node count with [`of_size`][ocfs2lab.spec.cluster.ClusterSpec.of_size], or list
    the nodes yourself.

    Attributes:
        name: Cluster name (o2cb: 1-16 letters and digits).
        nodes: The nodes, 1 to 255, with distinct names, numbers and addresses inside the
            network's subnet.
        network: The network they share.
        timing: Heartbeat and o2net knobs.
    """

    name: str = field(validator=rules.cluster_name)
    nodes: tuple[NodeSpec, ...] = field(converter=_node_tuple, validator=_node_count)
    network: NetworkSpec = field(factory=NetworkSpec)
    timing: TimingSpec = field(factory=TimingSpec)

    def __attrs_post_init__(self) -> None:
        _unique([n.name for n in self.nodes], "name", "node.name")
        _unique([n.number for n in self.nodes], "number", "node.number")
        _unique([n.address for n in self.nodes], "address", "node.address")
        net = self.network.subnet
        for n in self.nodes:
            if n.address not in net:
                raise SpecError(
                    "node.address",
                    str(n.address),
                    f"node {n.name} must have an address inside the network's subnet {net}",
                )
            taken = [net.network_address, net.broadcast_address]
            if self.network.reserve_gateway:
                taken.append(self.network.gateway)
            if n.address in taken:
                raise SpecError(
                    "node.address",
                    str(n.address),
                    f"node {n.name}: the network, broadcast and gateway addresses are taken",
                )

    @classmethod
    def of_size(
        cls,
        count: int,
        *,
        name: str = "ocfs2cluster",
        prefix: str = "ocfs2-node-",
        network: NetworkSpec | None = None,
        timing: TimingSpec | None = None,
    ) -> ClusterSpec:
        """The seed's cluster: nodes ``<prefix>1..N``, numbers 1..N, node k at host .10+k.

        Raises:
            SpecError: A count outside 1..255, a bad name, or a subnet too small.
        """
        if (
            isinstance(count, bool)
            or not isinstance(count, int)
            or not 1 <= count <= rules.MAX_SLOTS
        ):
            raise SpecError(
                "cluster.nodes",
                count,
                f"a cluster has 1 to {rules.MAX_SLOTS} nodes (OCFS2's slot limit)",
            )
        if count > rules.MAX_NODE_NUMBER:
            raise SpecError(
                "cluster.nodes",
                count,
                f"numbered from 1, at most {rules.MAX_NODE_NUMBER} nodes fit the kernel's node "
                "numbers 0..254; list the nodes yourself to use number 0",
            )
        net = network or NetworkSpec()
        nodes = tuple(
            NodeSpec(name=f"{prefix}{k}", number=k, address=net.address_for(k))
            for k in range(1, count + 1)
        )
        return cls(name=name, nodes=nodes, network=net, timing=timing or TimingSpec())

    def node(self, name_or_number: str | int) -> NodeSpec:
        """Find a node by name or number.

        Raises:
            SpecError: No such node.
        """
        for n in self.nodes:
            if name_or_number in (n.name, n.number):
                return n
        raise SpecError("node", name_or_number, "is not a node of this cluster")
