"""DRBD resources shared by the unit tests, the tool tests and the capture script.

``tests/data/drbd-utils/capture.py`` renders each of ``CASES`` and records what the real
``drbdadm dump`` makes of it; the tests compare against those files.
"""

from __future__ import annotations

from ocfs2lab.formats.drbd_res import (
    DrbdConnection,
    DrbdHost,
    DrbdResourceConfig,
    DrbdSection,
    DrbdSyntax,
)

SINGLE = DrbdResourceConfig(
    name="ocfs2-resource",
    minor=0,
    disk="/dev/loop0",
    hosts=[DrbdHost("node1", "127.0.0.1")],
)
MESH = DrbdResourceConfig(
    name="r0",
    minor=1,
    disk="/dev/loop1",
    hosts=[
        DrbdHost("alpha", "127.0.0.1", 7790, 0),
        DrbdHost("beta", "10.0.0.2", 7790, 1),
        DrbdHost("gamma", "fd00::3", 7790, 2),
    ],
    sections=[
        DrbdSection("net", [("protocol", ("C",)), ("allow-two-primaries", ("yes",))]),
        DrbdSection("disk", [("on-io-error", ("detach",))]),
    ],
)
PAIRS = DrbdResourceConfig(
    name="r1",
    minor=2,
    disk="/dev/vdb",
    device="/dev/drbd_lab",
    hosts=[
        DrbdHost("alpha", "127.0.0.1", 7791, 4),
        DrbdHost("beta", "10.0.0.2", 7791, 5),
        DrbdHost("gamma", "10.0.0.3", 7791, 6),
    ],
    connections=[DrbdConnection(("alpha", "beta")), DrbdConnection(("beta", "gamma"))],
)
TWO = DrbdResourceConfig(
    name="r0",
    minor=1,
    disk="/dev/loop1",
    hosts=[DrbdHost("alpha", "127.0.0.1", 7790), DrbdHost("beta", "10.0.0.2", 7790)],
    sections=[DrbdSection("net", [("protocol", ("C",))])],
)

#: case name -> (resource, syntax, the host drbdadm pretends to be; its address is 127.0.0.1)
CASES: dict[str, tuple[DrbdResourceConfig, DrbdSyntax, str]] = {
    "single-node.v9": (SINGLE, DrbdSyntax.V9, "node1"),
    "single-node.v84": (SINGLE, DrbdSyntax.V84, "node1"),
    "three-node-mesh.v9": (MESH, DrbdSyntax.V9, "alpha"),
    "three-node-pairs.v9": (PAIRS, DrbdSyntax.V9, "alpha"),
    "two-node.v84": (TWO, DrbdSyntax.V84, "alpha"),
}


def expected_hosts(res: DrbdResourceConfig, syntax: DrbdSyntax) -> list[DrbdHost]:
    """The hosts as the rendered file states them (node ids are written for DRBD 9 only)."""
    out = []
    for index, host in enumerate(res.hosts):
        node_id = None
        if syntax is DrbdSyntax.V9:
            node_id = host.node_id if host.node_id is not None else index
        out.append(DrbdHost(host.name, host.address, host.port, node_id))
    return out


def assert_same_as_dump(
    dumped: DrbdResourceConfig, res: DrbdResourceConfig, syntax: DrbdSyntax
) -> None:
    """``dumped`` (parsed ``drbdadm dump`` output) describes the resource ``res`` rendered."""
    assert (dumped.name, dumped.minor, dumped.disk, dumped.meta_disk, dumped.device_path) == (
        res.name,
        res.minor,
        res.disk,
        res.meta_disk,
        res.device_path,
    )
    assert list(dumped.hosts) == expected_hosts(res, syntax)
    assert dumped.peer_pairs() == res.peer_pairs()
    assert {s.name: s.options for s in dumped.sections} == {s.name: s.options for s in res.sections}
