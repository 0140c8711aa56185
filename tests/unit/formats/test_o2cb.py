"""o2cb list-* and cluster-status output, on real o2cb 1.8.7 captures."""

from __future__ import annotations

import pytest

from ocfs2lab.errors import ParseError
from ocfs2lab.formats.cluster_conf import parse_cluster_conf
from ocfs2lab.formats.o2cb import (
    O2cbStatus,
    parse_cluster_status,
    parse_list_cluster,
    parse_list_clusters,
    parse_list_heartbeats,
    parse_list_nodes,
)

from .conftest import DATA

O2CB = DATA / "ocfs2-tools"


def _conf(name: str) -> str:
    return (O2CB / f"{name}.conf").read_text()


@pytest.mark.parametrize("case", ["three-nodes-heartbeat", "global-two-regions"])
@pytest.mark.parametrize("form", ["list-cluster", "list-cluster-oneline"])
def test_list_cluster_equals_the_file(case: str, form: str) -> None:
    listed = parse_list_cluster((O2CB / f"{form}.{case}.txt").read_text())
    assert listed == parse_cluster_conf(_conf(case))


def test_list_nodes_and_heartbeats() -> None:
    conf = parse_cluster_conf(_conf("three-nodes-heartbeat"))
    text = (O2CB / "list-nodes.three-nodes-heartbeat.txt").read_text()
    assert parse_list_nodes(text) == conf.nodes
    text = (O2CB / "list-heartbeats.three-nodes-heartbeat.txt").read_text()
    assert parse_list_heartbeats(text) == conf.heartbeats
    conf = parse_cluster_conf(_conf("global-two-regions"))
    text = (O2CB / "list-nodes-oneline.global-two-regions.txt").read_text()
    assert parse_list_nodes(text) == conf.nodes
    text = (O2CB / "list-heartbeats-oneline.global-two-regions.txt").read_text()
    assert parse_list_heartbeats(text) == conf.heartbeats
    assert parse_list_nodes("") == ()


def test_list_clusters() -> None:
    text = (O2CB / "list-clusters.two-clusters.txt").read_text()
    assert parse_list_clusters(text) == ("alpha", "beta")
    assert parse_list_clusters("") == ()
    with pytest.raises(ParseError, match="twice"):
        parse_list_clusters("a\na\n")
    with pytest.raises(ParseError, match="one cluster name per line"):
        parse_list_clusters("a b\n")


def test_unknown_cluster_prints_nothing_and_exits_0() -> None:
    # The real capture: the error went to stderr and the exit status was 0.
    assert "Unknown cluster 'nosuch'" in (O2CB / "list-cluster.unknown.stderr").read_text()
    assert (O2CB / "list-cluster.unknown.rc").read_text().strip() == "exit 0"
    with pytest.raises(ParseError, match="exits 0"):
        parse_list_cluster("")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("node: 1 n 10.0.0.1:7777 c\n", "no cluster listed"),
        ("cluster: 0 local a\ncluster: 0 local b\n", "several clusters"),
        ("cluster: x local a\n", "'cluster: NODE_COUNT MODE NAME'"),
        ("cluster: 0 disk a\n", "local"),
        ("node: 1 n 10.0.0.1 c\ncluster: 1 local c\n", "'node: NUMBER NAME IP:PORT CLUSTER'"),
        ("heartbeat: A\ncluster: 0 local c\n", "'heartbeat: REGION CLUSTER'"),
        ("cluster: 0 local c\nnode: 1 n 10.0.0.1:7777 d\n", "which has no cluster: stanza"),
        ("cluster:\n\tname = c\n\tnode_count = 0\n\nbogus:\n\tx = 1\n", "unexpected bogus"),
    ],
)
def test_list_cluster_errors(text: str, words: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_list_cluster(text)
    assert words in str(info.value)


def test_list_nodes_refuses_other_entries() -> None:
    with pytest.raises(ParseError, match="expected one of node"):
        parse_list_nodes("heartbeat: A c\n")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("built/cluster-status.online.stdout", O2cbStatus(True, "ocfs2cluster")),
        ("built/cluster-status.offline-named.stdout", O2cbStatus(False, "ocfs2cluster")),
        ("built/cluster-status.offline.stdout", O2cbStatus(False, None)),
        ("built/cluster-status.online-bare.stdout", O2cbStatus(True, None)),
        # real: four identical lines from o2cb 1.8.7 without the kernel service
        ("cluster-status.no-kernel.stdout", O2cbStatus(False, None)),
    ],
)
def test_cluster_status(name: str, expected: O2cbStatus) -> None:
    assert parse_cluster_status((O2CB / name).read_text()) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "no status line"),
        ("online\noffline\n", "differs from line 1"),
        ("Cluster 'a' is online\nCluster 'b' is online\n", "differs"),
        ("o2cb: Unable to access cluster service\n", "expected"),
    ],
)
def test_cluster_status_errors(text: str, words: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_cluster_status(text)
    assert words in str(info.value)
