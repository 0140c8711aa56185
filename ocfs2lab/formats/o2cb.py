"""Output of the ``o2cb`` tool (ocfs2-tools 1.8.7): ``list-*`` and ``cluster-status``.

``o2cb list-cluster NAME`` prints the cluster's heartbeat stanzas, then its node stanzas, then
its cluster stanza, in the ``cluster.conf`` stanza format but with fixed key orders
(``o2cb_ctl/op_lists.c``); ``--oneline`` prints one line per object instead::

    heartbeat: REGION CLUSTER
    node: NUMBER NAME IP:PORT CLUSTER
    cluster: NODE_COUNT MODE NAME

``list-cluster`` of an unknown cluster prints nothing on stdout, ``o2cb: Unknown cluster
'NAME'`` on stderr, and exits 0 (1.8.7; captured in ``tests/data/ocfs2-tools``).

``o2cb cluster-status [NAME]`` prints ``Cluster 'NAME' is online|offline`` when a cluster is
registered (or was named), else a bare ``online``/``offline``, and exits 0 only when online
(``o2cb_ctl/op_status.c:112-116``). On a machine without the o2cb kernel service 1.8.7 prints
its line four times (a real capture); repeats of one status are accepted.
"""

from __future__ import annotations

import re
import warnings

from attrs import frozen

from ocfs2lab.errors import ParseError, SpecError
from ocfs2lab.formats._text import require_text
from ocfs2lab.formats.cluster_conf import (
    ClusterConf,
    ClusterStanza,
    HeartbeatStanza,
    NodeStanza,
    RawStanza,
    assemble,
    cluster_stanza,
    heartbeat_stanza,
    lex_stanzas,
    node_stanza,
)

__all__ = [
    "O2cbStatus",
    "parse_cluster_status",
    "parse_list_cluster",
    "parse_list_clusters",
    "parse_list_heartbeats",
    "parse_list_nodes",
]

_ONELINE_HB = re.compile(r"heartbeat: (\S+) (\S+)")
_ONELINE_NODE = re.compile(r"node: (\d+) (.+) (\S+):(\d+) (\S+)")
_ONELINE_CLUSTER = re.compile(r"cluster: (\d+) (\S+) (\S+)")
_ONELINE_ANY = re.compile(r"(heartbeat|node|cluster): \S")
_STATUS_NAMED = re.compile(r"Cluster '(.*)' is (online|offline)")


@frozen
class O2cbStatus:
    """What ``o2cb cluster-status`` said.

    Attributes:
        online: The cluster is registered (and, in global mode, has an active region).
        cluster: The cluster named in the output, or ``None`` for a bare ``online``/``offline``
            (no cluster registered and none asked for).
    """

    online: bool
    cluster: str | None = None


def _lines(text: str, what: str) -> list[tuple[int, str]]:
    require_text(text, what)
    return [(i + 1, line) for i, line in enumerate(text.split("\n")) if line.strip() != ""]


def _is_oneline(text: str) -> bool:
    for line in text.split("\n"):
        if line.strip():
            return _ONELINE_ANY.match(line) is not None
    return False


def _oneline_objects(
    text: str, what: str, allowed: frozenset[str]
) -> list[tuple[RawStanza, ClusterStanza | NodeStanza | HeartbeatStanza]]:
    out: list[tuple[RawStanza, ClusterStanza | NodeStanza | HeartbeatStanza]] = []
    for lineno, line in _lines(text, what):
        kind = line.split(":", 1)[0]
        if kind not in allowed:
            raise ParseError(
                what, f"expected one of {', '.join(sorted(allowed))}", line=lineno, text=line
            )
        raw = RawStanza(kind=kind, line=lineno, text=line)
        try:
            if kind == "heartbeat" and (m := _ONELINE_HB.fullmatch(line)):
                out.append((raw, HeartbeatStanza(region=m.group(1), cluster=m.group(2))))
                continue
            if kind == "node" and (m := _ONELINE_NODE.fullmatch(line)):
                node = NodeStanza(
                    number=int(m.group(1)),
                    name=m.group(2),
                    ip_address=m.group(3),
                    ip_port=int(m.group(4)),
                    cluster=m.group(5),
                )
                out.append((raw, node))
                continue
            if kind == "cluster" and (m := _ONELINE_CLUSTER.fullmatch(line)):
                stanza = ClusterStanza(
                    node_count=int(m.group(1)), heartbeat_mode=m.group(2), name=m.group(3)
                )
                out.append((raw, stanza))
                continue
        except SpecError as exc:
            raise ParseError(what, exc.message, line=lineno, text=line) from exc
        formats = {
            "heartbeat": "'heartbeat: REGION CLUSTER'",
            "node": "'node: NUMBER NAME IP:PORT CLUSTER'",
            "cluster": "'cluster: NODE_COUNT MODE NAME'",
        }
        raise ParseError(what, f"expected {formats[kind]}", line=lineno, text=line)
    return out


def _stanza_objects(
    text: str, what: str, allowed: frozenset[str]
) -> list[tuple[RawStanza, ClusterStanza | NodeStanza | HeartbeatStanza]]:
    out: list[tuple[RawStanza, ClusterStanza | NodeStanza | HeartbeatStanza]] = []
    for raw in lex_stanzas(text, what):
        if raw.kind not in allowed:
            raise ParseError(
                what,
                f"unexpected {raw.kind}: stanza (expected {', '.join(sorted(allowed))})",
                line=raw.line,
                text=raw.text,
            )
        if raw.kind == "cluster":
            out.append((raw, cluster_stanza(raw, what)))
        elif raw.kind == "node":
            out.append((raw, node_stanza(raw, what)))
        else:
            out.append((raw, heartbeat_stanza(raw, what)))
    return out


def _objects(
    text: str, what: str, allowed: frozenset[str]
) -> list[tuple[RawStanza, ClusterStanza | NodeStanza | HeartbeatStanza]]:
    require_text(text, what)
    if _is_oneline(text):
        return _oneline_objects(text, what, allowed)
    return _stanza_objects(text, what, allowed)


def parse_list_cluster(text: str) -> ClusterConf:
    """Parse ``o2cb list-cluster [--oneline] NAME`` output.

    Args:
        text: The command's stdout.

    Returns:
        The cluster as o2cb loaded it (unknown keys are never listed, so ``extra`` is empty).

    Raises:
        ParseError: The output is empty (o2cb prints nothing for an unknown cluster and still
            exits 0), lists no or several clusters, or breaks the format.
    """
    what = "o2cb list-cluster"
    objects = _objects(text, what, frozenset({"cluster", "node", "heartbeat"}))
    clusters = [(r, o) for r, o in objects if isinstance(o, ClusterStanza)]
    members = [(r, o) for r, o in objects if isinstance(o, NodeStanza | HeartbeatStanza)]
    if not clusters:
        raise ParseError(
            what,
            "no cluster listed (for an unknown cluster o2cb prints nothing on stdout, "
            "'Unknown cluster' on stderr, and exits 0)",
        )
    if len(clusters) > 1:
        raise ParseError(what, "several clusters listed", line=clusters[1][0].line)
    return assemble(what, clusters, members)[0]


def parse_list_nodes(text: str) -> tuple[NodeStanza, ...]:
    """Parse ``o2cb list-nodes [--oneline] NAME`` output.

    Args:
        text: The command's stdout.

    Returns:
        The nodes in the order listed (empty for no output).

    Raises:
        ParseError: Something other than node entries, or a malformed entry.
    """
    objects = _objects(text, "o2cb list-nodes", frozenset({"node"}))
    return tuple(o for _, o in objects if isinstance(o, NodeStanza))


def parse_list_heartbeats(text: str) -> tuple[HeartbeatStanza, ...]:
    """Parse ``o2cb list-heartbeats [--oneline] NAME`` output.

    Args:
        text: The command's stdout.

    Returns:
        The heartbeat regions in the order listed (empty for no output).

    Raises:
        ParseError: Something other than heartbeat entries, or a malformed entry.
    """
    objects = _objects(text, "o2cb list-heartbeats", frozenset({"heartbeat"}))
    return tuple(o for _, o in objects if isinstance(o, HeartbeatStanza))


def parse_list_clusters(text: str) -> tuple[str, ...]:
    """Parse ``o2cb list-clusters`` output: one cluster name per line.

    Args:
        text: The command's stdout.

    Returns:
        The names in the order listed.

    Raises:
        ParseError: A line holds blanks around or inside the name, or a name repeats.
    """
    what = "o2cb list-clusters"
    names: list[str] = []
    for lineno, line in _lines(text, what):
        if line != line.strip() or " " in line or "\t" in line:
            raise ParseError(what, "expected one cluster name per line", line=lineno, text=line)
        if line in names:
            raise ParseError(what, "cluster listed twice", line=lineno, text=line)
        names.append(line)
    return tuple(names)


def parse_cluster_status(text: str) -> O2cbStatus:
    """Parse ``o2cb cluster-status [NAME]`` stdout.

    Args:
        text: The command's stdout (errors go to stderr and are not parsed here).

    Returns:
        Whether the cluster is online, and its name when o2cb printed one.

    Raises:
        ParseError: No status line, a line of another shape, or conflicting status lines.
    """
    what = "o2cb cluster-status"
    found: O2cbStatus | None = None
    first_line = 0
    for lineno, raw in _lines(text, what):
        line = raw.rstrip("\r")
        named = _STATUS_NAMED.fullmatch(line)
        if named:
            status = O2cbStatus(online=named.group(2) == "online", cluster=named.group(1))
        elif line in ("online", "offline"):
            status = O2cbStatus(online=line == "online")
        else:
            raise ParseError(
                what,
                "expected \"Cluster 'NAME' is online|offline\" or a bare online/offline",
                line=lineno,
                text=raw,
            )
        if found is None:
            found, first_line = status, lineno
        elif status != found:
            raise ParseError(what, f"status differs from line {first_line}", line=lineno, text=raw)
    if found is None:
        raise ParseError(what, "no status line in the output")
    return found


# `ocfs2lab.clusters.ClusterStatus` is a cluster's status; this module's was renamed.
def __getattr__(name: str) -> object:
    """``ClusterStatus``, the earlier name of `O2cbStatus`, with a deprecation warning."""
    if name == "ClusterStatus":
        warnings.warn(
            "ocfs2lab.formats.o2cb.ClusterStatus is now O2cbStatus",
            DeprecationWarning,
            stacklevel=2,
        )
        return O2cbStatus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
