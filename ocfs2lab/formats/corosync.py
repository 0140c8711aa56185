"""The userspace stack's files and status: ``corosync.conf``, ``dlm.conf``, and what
``corosync-quorumtool -s`` and ``dlm_tool status`` print.

[`render_corosync_conf`][ocfs2lab.formats.corosync.render_corosync_conf] writes the minimal
configuration of corosync 3 (``corosync.conf(5)``, ``votequorum(5)``): knet on the
interconnect, one ``node`` per cluster node with its number as ``nodeid`` (fs/dlm and
ocfs2 use the same ids), votequorum (``two_node`` for two nodes), logs to syslog.
[`render_dlm_conf`][ocfs2lab.formats.corosync.render_dlm_conf] writes dlm_controld's
``dlm.conf(5)``: fencing on with the lab's agent (``fence_all``), or off.

The parsers read the status commands' text, as captured from corosync 3.1 and dlm 4.3 (the
lab image's trixie packages; see ``tests/data/pcmk``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from attrs import frozen

from ocfs2lab.errors import ParseError

#: Where corosync and dlm_controld read their configuration.
COROSYNC_CONF = "/etc/corosync/corosync.conf"
DLM_CONF = "/etc/dlm/dlm.conf"


@frozen
class CorosyncNode:
    """One ``nodelist.node``: its name, corosync (and DLM) node id, and ring 0 address."""

    name: str
    nodeid: int
    address: str


def render_corosync_conf(
    cluster: str,
    nodes: Sequence[CorosyncNode],
    *,
    token_ms: int,
    consensus_ms: int,
    comment: str = "",
) -> str:
    """``corosync.conf`` for ``nodes`` (knet, votequorum, syslog).

    Args:
        cluster: ``totem.cluster_name`` (the name ``mkfs.ocfs2 --cluster-name`` gives the
            volume, which ocfs2 compares at mount).
        nodes: The nodes, each with its id and interconnect address.
        token_ms: ``totem.token``.
        consensus_ms: ``totem.consensus``.
        comment: A first comment line (who wrote the file).
    """
    lines = [f"# {comment}"] if comment else []
    lines += [
        "totem {",
        "\tversion: 2",
        f"\tcluster_name: {cluster}",
        "\ttransport: knet",
        f"\ttoken: {token_ms}",
        f"\tconsensus: {consensus_ms}",
        "\tcrypto_cipher: none",
        "\tcrypto_hash: none",
        "}",
        "",
        "nodelist {",
    ]
    for node in nodes:
        lines += [
            "\tnode {",
            f"\t\tname: {node.name}",
            f"\t\tnodeid: {node.nodeid}",
            f"\t\tring0_addr: {node.address}",
            "\t}",
        ]
    lines += ["}", "", "quorum {", "\tprovider: corosync_votequorum"]
    if len(nodes) == 2:
        lines.append("\ttwo_node: 1")
    lines += [
        "}",
        "",
        "logging {",
        "\tto_syslog: yes",
        "\tto_stderr: no",
        "\tto_logfile: no",
        "\ttimestamp: off",
        "\tdebug: off",
        "}",
    ]
    return "\n".join(lines) + "\n"


def render_dlm_conf(
    *, fencing: bool, agent: str | None, post_join_delay_s: int, comment: str = ""
) -> str:
    """``dlm.conf`` for dlm_controld.

    Args:
        fencing: ``enable_fencing``; with it, ``agent`` fences every node (``fence_all``).
        agent: The fence agent's path (ignored without fencing).
        post_join_delay_s: ``post_join_delay``.
        comment: A first comment line.
    """
    lines = [f"# {comment}"] if comment else []
    lines += [
        "protocol=tcp",
        f"enable_fencing={1 if fencing else 0}",
        # The lab starts every node together: nothing to fence at start-up.
        "enable_startup_fencing=0",
        f"post_join_delay={post_join_delay_s}",
    ]
    if fencing and agent:
        lines.append(f"fence_all {agent}")
    return "\n".join(lines) + "\n"


@frozen
class QuorumStatus:
    """What ``corosync-quorumtool -s`` says.

    Attributes:
        nodeid: This node's id.
        quorate: The partition this node is in has quorum.
        members: Node ids in this node's membership, ascending.
        expected_votes: Votes of the whole cluster.
        total_votes: Votes present.
    """

    nodeid: int
    quorate: bool
    members: tuple[int, ...]
    expected_votes: int | None
    total_votes: int | None


_QT_FIELD = re.compile(r"^(?P<key>[A-Za-z][A-Za-z ]*?):\s+(?P<value>.*?)\s*$")
_QT_MEMBER = re.compile(r"^\s*(?P<id>\d+)\s+\d+\s+\S+")


def parse_quorumtool(text: str) -> QuorumStatus:
    """Parse ``corosync-quorumtool -s`` (its exit code is 0 quorate, 2 not quorate).

    Raises:
        ParseError: No ``Node ID`` or ``Quorate`` line (not that command's output).
    """
    fields: dict[str, str] = {}
    members: list[int] = []
    in_members = False
    for line in text.splitlines():
        if line.strip().startswith("Nodeid"):
            in_members = True
            continue
        if in_members:
            if m := _QT_MEMBER.match(line):
                members.append(int(m.group("id")))
            continue
        if m := _QT_FIELD.match(line):
            fields[m.group("key").strip()] = m.group("value")
    if "Node ID" not in fields or "Quorate" not in fields:
        raise ParseError("corosync-quorumtool -s", "no Node ID or Quorate line", text=text)

    def number(key: str) -> int | None:
        value = fields.get(key, "").split()
        return int(value[0]) if value and value[0].isdigit() else None

    return QuorumStatus(
        nodeid=int(fields["Node ID"]),
        quorate=fields["Quorate"].lower().startswith("yes"),
        members=tuple(sorted(members)),
        expected_votes=number("Expected votes"),
        total_votes=number("Total votes"),
    )


@frozen
class DlmStatus:
    """What ``dlm_tool status`` says about the daemon and the cluster.

    Attributes:
        quorate: dlm_controld sees a quorate cluster.
        members: Node ids dlm_controld counts as members (``M`` on their ``node`` line).
        nodes: Per node id, the words of its ``node`` line after the id.
        fence_pid: The pid of a fence agent running now (0: no fencing in progress).
    """

    quorate: bool
    members: tuple[int, ...]
    nodes: dict[int, tuple[str, ...]]
    fence_pid: int


_DLM_CLUSTER = re.compile(r"^cluster nodeid \d+ quorate (?P<q>\d+)")
_DLM_DAEMON = re.compile(r"^daemon now \d+ fence_pid (?P<pid>\d+)")
_DLM_NODE = re.compile(r"^node (?P<id>\d+) (?P<rest>.*)$")


def parse_dlm_status(text: str) -> DlmStatus:
    """Parse ``dlm_tool status``.

    Raises:
        ParseError: No ``cluster nodeid ... quorate`` line (the daemon did not answer).
    """
    quorate: bool | None = None
    nodes: dict[int, tuple[str, ...]] = {}
    fence_pid = 0
    for raw in text.splitlines():
        line = raw.strip()
        if m := _DLM_CLUSTER.match(line):
            quorate = m.group("q") == "1"
        elif m := _DLM_DAEMON.match(line):
            fence_pid = int(m.group("pid"))
        elif m := _DLM_NODE.match(line):
            nodes[int(m.group("id"))] = tuple(m.group("rest").split())
    if quorate is None:
        raise ParseError("dlm_tool status", "no 'cluster nodeid ... quorate' line", text=text)
    members = tuple(sorted(n for n, words in nodes.items() if words[:1] == ("M",)))
    return DlmStatus(quorate=quorate, members=members, nodes=nodes, fence_pid=fence_pid)


__all__ = [
    "COROSYNC_CONF",
    "DLM_CONF",
    "CorosyncNode",
    "DlmStatus",
    "QuorumStatus",
    "parse_dlm_status",
    "parse_quorumtool",
    "render_corosync_conf",
    "render_dlm_conf",
]
