"""cluster.conf: byte-identical to what o2cb writes, tolerant and strict where o2cb is."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from ocfs2lab.errors import ParseError, SpecError
from ocfs2lab.formats.cluster_conf import (
    ClusterConf,
    ClusterStanza,
    HeartbeatMode,
    HeartbeatStanza,
    NodeStanza,
    parse_cluster_conf,
    parse_cluster_confs,
    render_cluster_conf,
)

from .conftest import DATA

O2CB = DATA / "ocfs2-tools"
UUID1 = "1BE1EEC9B6E24B0EBF0AAC5B3D5B6E13"
UUID2 = "7A3F2D61C0E94E7C9B1A4F6E2D8C5B90"

# The clusters capture.sh built with o2cb, rebuilt with the library.
BUILT: dict[str, list[ClusterConf]] = {
    "two-nodes-local.conf": [
        ClusterConf.build(
            "ocfs2cluster", [("node1", 1, "172.20.0.11"), ("node2", 2, "172.20.0.12")]
        )
    ],
    "three-nodes-heartbeat.conf": [
        ClusterConf.build(
            "ocfs2cluster",
            [(f"node{k}", k, f"172.20.0.1{k}") for k in (1, 2, 3)],
            regions=[UUID1],
        )
    ],
    "global-two-regions.conf": [
        ClusterConf.build(
            "labglobal",
            [("vm0", 0, "192.168.77.1"), ("vm1", 1, "192.168.77.2")],
            regions=[UUID1, UUID2],
            heartbeat_mode="global",
            port=7778,
        )
    ],
    "two-clusters.conf": [
        ClusterConf.build("alpha", [("a1", 1, "10.0.0.1")]),
        ClusterConf.build("beta", [("b1", 1, "10.0.1.1")], regions=[UUID2]),
    ],
    "empty-cluster.conf": [ClusterConf.build("lonely", [])],
}

CONF = """cluster:
\tname = c
\theartbeat_mode = local
\tnode_count = 1

node:
\tcluster = c
\tnumber = 1
\tip_port = 7777
\tip_address = 10.0.0.1
\tname = n1
"""


@pytest.mark.parametrize("name", sorted(BUILT))
def test_render_is_byte_identical_to_o2cb(name: str) -> None:
    assert render_cluster_conf(BUILT[name]) == (O2CB / name).read_text()


@pytest.mark.parametrize("path", sorted(O2CB.glob("*.conf")), ids=lambda p: p.name)
def test_parse_of_o2cb_files(path: Path) -> None:
    text = path.read_text()
    confs = parse_cluster_confs(text)
    assert list(confs) == BUILT[path.name]
    assert render_cluster_conf(confs) == text


def test_three_nodes_typed() -> None:
    conf = parse_cluster_conf((O2CB / "three-nodes-heartbeat.conf").read_text())
    assert conf.name == "ocfs2cluster"
    assert conf.cluster.heartbeat_mode is HeartbeatMode.LOCAL
    assert conf.cluster.node_count == 3
    assert conf.node("node2") == NodeStanza(
        name="node2",
        number=2,
        ip_address=ipaddress.IPv4Address("172.20.0.12"),
        cluster="ocfs2cluster",
        ip_port=7777,
    )
    assert conf.heartbeats == (HeartbeatStanza(region=UUID1, cluster="ocfs2cluster"),)
    with pytest.raises(KeyError):
        conf.node("node9")


def test_render_method_and_empty() -> None:
    conf = BUILT["empty-cluster.conf"][0]
    assert conf.render() == render_cluster_conf([conf])
    assert render_cluster_conf([]) == ""
    assert parse_cluster_confs("") == ()


@pytest.mark.parametrize(
    "text",
    [
        # comment lines at column 0, also inside a stanza
        "# generated\ncluster:\n\tname = c\n# note\n\tnode_count = 0\n",
        # blanks instead of tabs, no blanks around '=', tabs around '='
        "cluster:\n  name=c\n    node_count\t=\t0\n",
        # blanks after the stanza header and after values
        "cluster:  \t\n\tname = c  \n\tnode_count = 0\t\n",
        # no newline at the end
        "cluster:\n\tname = c\n\tnode_count = 0",
        # several blank lines between stanzas, blank lines at the start
        "\n\n\ncluster:\n\tname = c\n\tnode_count = 0\n\n\n",
        # a key given twice: the last one wins, as in jconfig
        "cluster:\n\tname = x\n\tname = c\n\tnode_count = 0\n",
        # o2cb reads the mode case-insensitively
        "cluster:\n\tname = c\n\theartbeat_mode = LOCAL\n\tnode_count = 0\n",
        # strtoul accepts a plus sign
        "cluster:\n\tname = c\n\tnode_count = +0\n",
    ],
)
def test_tolerated_like_o2cb(text: str) -> None:
    conf = parse_cluster_conf(text)
    assert conf == ClusterConf(ClusterStanza(name="c", node_count=0))


def test_missing_mode_is_local_and_global_is_normalised() -> None:
    conf = parse_cluster_conf("cluster:\n\tname = c\n\tnode_count = 0\n")
    assert conf.cluster.heartbeat_mode is HeartbeatMode.LOCAL
    conf = parse_cluster_conf("cluster:\n\tname = c\n\theartbeat_mode = Global\n\tnode_count = 0\n")
    assert conf.cluster.heartbeat_mode is HeartbeatMode.GLOBAL
    assert "\theartbeat_mode = global\n" in conf.render()


def test_unknown_keys_are_kept_and_written_after_known_ones() -> None:
    text = CONF.replace("\tname = n1\n", "\tname = n1\n\tweight = 3\n\tnote = a\\\n  b\n")
    conf = parse_cluster_conf(text)
    assert conf.nodes[0].extra == (("weight", "3"), ("note", "a\n  b"))
    rendered = conf.render()
    assert rendered.endswith("\tname = n1\n\tweight = 3\n\tnote = a\\\n  b\n\n")
    assert parse_cluster_conf(rendered) == conf


def test_empty_unknown_value() -> None:
    conf = parse_cluster_conf("cluster:\n\tname = c\n\tfoo =\n\tnode_count = 0\n")
    assert conf.cluster.extra == (("foo", ""),)
    assert "\tfoo =\n" in conf.render()


def test_node_count_is_kept_as_written() -> None:
    conf = parse_cluster_conf(CONF.replace("node_count = 1", "node_count = 5"))
    assert conf.cluster.node_count == 5
    assert len(conf.nodes) == 1


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("cluster:\n\tname = c\n\t# x\n", 3, "comment must start at column 0"),
        ("cluster :\n", 1, "invalid character ' ' in stanza name"),
        ("cluster: x\n", 1, "only blanks may follow the ':'"),
        ("cluster\n", 1, "without ':'"),
        (" cluster:\n", 1, "stanza header must start at column 0"),
        ("-x:\n", 1, "invalid character '-' at the start"),
        ("cluster:\n\tname = c\n\n\tnode_count = 1\n", 4, "outside a stanza"),
        ("cluster:\n\tname = c\n\t \n\tnode_count = 1\n", 4, "outside a stanza"),
        ("\tname = c\n", 1, "outside a stanza"),
        ("cluster:\r\n\tname = c\r\n", 1, "CRLF"),
        ("cluster:\n\tfoo-bar = 1\n", 2, "expected 'key = value'"),
        ("cluster:\n\tname c\n", 2, "expected 'key = value'"),
        ("cluster:\n\t-name = c\n", 2, "invalid character '-' in attribute name"),
        ("cluster:\n\tname = c\n\tnode_count = 1\n\theartbeat_mode = disk\n", 4, "local"),
        ("cluster:\n\tname = c\n", 1, "has no 'node_count'"),
        ("cluster:\n\tnode_count = 0\n", 1, "has no 'name'"),
        ("cluster:\n\tname =\n\tnode_count = 0\n", 2, "'name' is empty"),
        ("cluster:\n\tname = c\n\tnode_count = x\n", 3, "decimal number"),
        ("cluster:\n\tname = c\n\tnode_count = 4294967296\n", 3, "above o2cb's limit"),
        ("cluster:\n\tname = c\n\tnode_count = 0\n\nfoo:\n\tx = 1\n", 5, "unknown stanza"),
        (CONF.replace("\tip_port = 7777\n", ""), 6, "has no 'ip_port'"),
        (CONF.replace("10.0.0.1", "10.0.0.01"), 10, "dotted IPv4"),
        (CONF.replace("10.0.0.1", "::1"), 10, "dotted IPv4"),
        (CONF.replace("number = 1", "number = 300"), 8, "0..254"),
        (CONF.replace("ip_port = 7777", "ip_port = 70000"), 9, "1..65534"),
        (CONF.replace("ip_port = 7777", "ip_port = 0"), 9, "1..65534"),
        (CONF.replace("cluster = c", "cluster = zz"), 7, "which has no cluster: stanza"),
        (CONF.replace("\tcluster = c\n", ""), 6, "has no 'cluster'"),
        ("cluster:\n\tname = c\n\tnode_count = 0\n\n" * 2, 5, "defined twice"),
        (
            "cluster:\n\tname = c\n\tnode_count = 0\n\n"
            + "heartbeat:\n\tcluster = c\n\tregion = A\n\n" * 2,
            11,
            "already used at line 7",
        ),
        ("cluster:\n\tname = c\n\tnode_count = 0\n\nheartbeat:\n\tcluster = c\n", 5, "region"),
    ],
)
def test_refused_with_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_cluster_confs(text)
    assert info.value.line == line, str(info.value)
    assert words in str(info.value)
    assert str(info.value).startswith("cannot parse cluster.conf line ")


@pytest.mark.parametrize(
    ("second", "words"),
    [
        ("name = n1\n\tnumber = 2\n\tip_address = 10.0.0.2", "name 'n1'"),
        ("name = n2\n\tnumber = 1\n\tip_address = 10.0.0.2", "number '1'"),
        ("name = n2\n\tnumber = 2\n\tip_address = 10.0.0.1", "ip_address '10.0.0.1'"),
    ],
)
def test_duplicate_nodes(second: str, words: str) -> None:
    text = CONF + "\nnode:\n\tcluster = c\n\tip_port = 7777\n\t" + second + "\n"
    with pytest.raises(ParseError) as info:
        parse_cluster_confs(text)
    assert words in str(info.value)
    assert "already used at line" in str(info.value)


def test_choosing_a_cluster() -> None:
    text = (O2CB / "two-clusters.conf").read_text()
    with pytest.raises(ParseError, match="several clusters"):
        parse_cluster_conf(text)
    assert parse_cluster_conf(text, "beta").heartbeats[0].region == UUID2
    with pytest.raises(ParseError, match="no cluster named 'gamma'"):
        parse_cluster_conf(text, "gamma")
    with pytest.raises(ParseError, match="no cluster: stanza"):
        parse_cluster_conf("# nothing\n")


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: ClusterStanza(name="", node_count=0), "must not be empty"),
        (lambda: ClusterStanza(name=" c", node_count=0), "whitespace"),
        (lambda: ClusterStanza(name="c\nd", node_count=0), "single line"),
        (lambda: ClusterStanza(name="c\\", node_count=0), "backslash"),
        (lambda: ClusterStanza(name="c", node_count=-1), "0..4294967295"),
        (lambda: ClusterStanza(name="c", node_count=0, heartbeat_mode="disk"), "local"),
        (lambda: ClusterStanza(name="c", node_count=0, extra=[("name", "x")]), "known"),
        (lambda: ClusterStanza(name="c", node_count=0, extra=[("a-b", "x")]), "A-Za-z0-9_"),
        (lambda: ClusterStanza(name="c", node_count=0, extra=[("a", "x\\\ny")]), "backslash"),
        (lambda: NodeStanza(name="n", number=255, ip_address="1.2.3.4", cluster="c"), "254"),
        (lambda: NodeStanza(name="n", number=1, ip_address="1.2.3", cluster="c"), "IPv4"),
        (
            lambda: ClusterConf(
                ClusterStanza(name="c", node_count=1),
                [NodeStanza(name="n", number=1, ip_address="1.2.3.4", cluster="d")],
            ),
            "must name cluster 'c'",
        ),
        (lambda: ClusterConf.build("c", [("n", 1, "1.2.3.4")], regions=["A", "A"]), "twice"),
    ],
)
def test_values_are_checked_when_built(make: object, words: str) -> None:
    with pytest.raises(SpecError) as info:
        make()  # type: ignore[operator]
    assert words in str(info.value)


def test_render_refuses_two_clusters_of_one_name() -> None:
    conf = BUILT["empty-cluster.conf"][0]
    with pytest.raises(SpecError, match="twice"):
        render_cluster_conf([conf, conf])
