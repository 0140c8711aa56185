"""The pcmk stack's input checks, files and status parsers (the stack itself runs for real
in tests/lab/test_pcmk.py)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from ocfs2lab.clusters import Cluster, VmCluster
from ocfs2lab.errors import ParseError, SpecError
from ocfs2lab.formats.corosync import (
    CorosyncNode,
    parse_dlm_status,
    parse_quorumtool,
    render_corosync_conf,
    render_dlm_conf,
)
from ocfs2lab.fs.pcmk import PcmkCluster, fence_agent_script, log_forwarder_script
from ocfs2lab.fs.volume import mkfs_argv
from ocfs2lab.host.base import Machine
from ocfs2lab.node.ssh import SshNode
from ocfs2lab.runner.ssh import SshRunner
from ocfs2lab.spec.cluster import ClusterSpec
from ocfs2lab.spec.stack import PcmkSpec
from ocfs2lab.spec.storage import VolumeSpec
from tests.support.fake import FakeRunner

DATA = Path(__file__).resolve().parents[1] / "data" / "pcmk"


class FakeHost(Machine):
    def docker(self) -> object:
        raise AssertionError("bad input must fail before Docker is asked")


def test_containers_refuse_pcmk_before_anything_runs() -> None:
    runner = FakeRunner()
    with pytest.raises(SpecError) as info:
        Cluster(FakeHost(runner, "fake"), 3, stack="pcmk")  # type: ignore[arg-type]
    assert info.value.field == "stack"
    assert "kernel per node" in str(info.value) and "VmCluster" in str(info.value)
    assert runner.calls == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"stack": "gfs2"}, "stack"),
        ({"pcmk": PcmkSpec()}, "pcmk"),  # settings without the stack
        ({"stack": "pcmk", "heartbeat_mode": "global"}, "heartbeat_mode"),
    ],
)
def test_vm_cluster_checks_the_stack_before_anything_is_made(
    kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(SpecError) as info:
        VmCluster(3, **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"token_ms": 50}, "pcmk.token_ms"),
        ({"token_ms": 5000, "consensus_ms": 4000}, "pcmk.consensus_ms"),
        ({"fencing": "stonith"}, "pcmk.fencing"),
        ({"fence_timeout_s": 1}, "pcmk.fence_timeout_s"),
    ],
)
def test_pcmk_spec_names_the_field_and_the_rule(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as info:
        PcmkSpec(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_pcmk_spec_defaults_follow_corosync() -> None:
    spec = PcmkSpec()
    assert spec.consensus == 6000  # corosync: 1.2 x token
    assert spec.detect_after_s == 11.0
    assert PcmkSpec(token_ms=3000, consensus_ms=4000).consensus == 4000


def test_fencing_needs_a_timeline() -> None:
    spec = ClusterSpec.of_size(2, name="lab")
    runner = FakeRunner()
    nodes = [SshNode(n, runner=cast(SshRunner, runner)) for n in spec.nodes]
    with pytest.raises(SpecError) as info:
        PcmkCluster(nodes, spec)
    assert info.value.field == "timeline"
    PcmkCluster(nodes, spec, PcmkSpec(fencing="none"))  # no fencing: no timeline needed
    assert runner.calls == []


def test_corosync_conf_lists_every_node_with_its_id() -> None:
    nodes = [CorosyncNode(f"n{k}", k, f"192.168.77.{10 + k}") for k in (1, 2, 3)]
    text = render_corosync_conf("lab", nodes, token_ms=5000, consensus_ms=6000, comment="x")
    assert text.startswith("# x\ntotem {\n")
    assert "\tcluster_name: lab\n" in text and "\ttransport: knet\n" in text
    assert "\ttoken: 5000\n\tconsensus: 6000\n" in text
    assert text.count("\tnode {") == 3
    assert "\t\tname: n2\n\t\tnodeid: 2\n\t\tring0_addr: 192.168.77.12\n" in text
    assert "two_node" not in text
    two = render_corosync_conf("lab", nodes[:2], token_ms=5000, consensus_ms=6000)
    assert "\ttwo_node: 1\n" in two
    assert text.count("{") == text.count("}")


def test_dlm_conf_fencing_modes() -> None:
    on = render_dlm_conf(fencing=True, agent="/usr/local/sbin/f", post_join_delay_s=10)
    assert on.splitlines() == [
        "protocol=tcp",
        "enable_fencing=1",
        "enable_startup_fencing=0",
        "post_join_delay=10",
        "fence_all /usr/local/sbin/f",
    ]
    off = render_dlm_conf(fencing=False, agent="/x", post_join_delay_s=30)
    assert "enable_fencing=0" in off and "fence_all" not in off


def test_mkfs_names_the_stack() -> None:
    argv = mkfs_argv(VolumeSpec(), "/dev/vdb", "lab", 3, stack="pcmk")
    assert "--cluster-stack=pcmk" in argv and "--cluster-name=lab" in argv


def test_guest_scripts() -> None:
    agent = fence_agent_script(90)
    assert agent.startswith("#!/bin/sh") and "timeout=90\n" in agent and "@" not in agent
    assert "ocfs2lab-fence: request node=$node" in agent
    forwarder = log_forwarder_script()
    assert '--identifier="$1"' in forwarder and "forward corosync" in forwarder


def test_status_parsers_refuse_other_text() -> None:
    with pytest.raises(ParseError):
        parse_quorumtool("Cannot initialize QUORUM service\n")
    with pytest.raises(ParseError):
        parse_dlm_status("dlm_controld is not running\n")


def test_quorumtool_captured_in_the_lab() -> None:
    q = parse_quorumtool((DATA / "corosync-quorumtool-s.txt").read_text())
    assert q.nodeid == 1 and q.quorate and q.members == (1, 2, 3)
    assert q.expected_votes == 3 and q.total_votes == 3


def test_dlm_tool_status_captured_in_the_lab() -> None:
    status = parse_dlm_status((DATA / "dlm_tool-status.txt").read_text())
    assert status.quorate and status.members == (1, 2, 3) and status.fence_pid == 0
    assert status.nodes[2][:3] == ("M", "add", "100")
