"""Kernel log lines as typed events: o2net, o2hb, o2quo, o2dlm, ocfs2, DRBD, fs/dlm, kernel
errors, and the userspace stack's daemons (corosync, dlm_controld and the lab's fence agent,
whose journal lines the lab forwards into the kernel log).

[`parse_kernel_line`][ocfs2lab.formats.kmsg.parse_kernel_line] turns one line of kernel text into a
[`KernelEvent`][ocfs2lab.formats.kmsg.KernelEvent]. The line may carry what the various readers add
in front of the message, in this order:

* a ``/dev/kmsg`` record header ``PRIO,SEQ,USEC,FLAGS;`` (priority, sequence, timestamp);
* a journald/syslog ``Mon DD HH:MM:SS host kernel:`` prefix, or a ``dmesg -x``
  ``kern  :info  :`` prefix;
* a ``<N>`` priority (``dmesg -r``);
* a ``[   12.345678]`` timestamp (``dmesg``, serial console with ``printk.time``), optionally
  followed by a ``[  T123]`` caller id, or a ``dmesg -T`` ``[Tue Nov 25 11:23:45 2026]``;
* the OCFS2 mlog prefix ``(comm,pid,cpu):function:line `` and, for ``ML_ERROR``, ``ERROR: ``.

ANSI escape sequences and a trailing ``\\r`` (serial consoles) are removed first. A line that
matches no known message becomes an [`EventKind.UNKNOWN`][ocfs2lab.formats.kmsg.EventKind.UNKNOWN]
event: nothing is dropped and nothing raises.

The message shapes are the kernel's own format strings (Linux 6.1.192 and 6.12.117, identical
for everything here except the in-tree DRBD device prefix, ``block drbdN:`` in 6.1 and
``drbd RES/VOL drbdN:`` in 6.12), cited per pattern below; DRBD 9's state lines follow
LINBIT's ``drbd_state.c`` (``... [tag]``).

o2dlm prints a domain's member list after its join/leave line with separate ``printk`` calls
that do not use ``KERN_CONT``, so the list arrives as separate records (``( 1 2 ) 2 nodes``,
or one record per piece: ``(``, ``1``, ``2``, ``) 2 nodes``).
[`KmsgAssembler`][ocfs2lab.formats.kmsg.KmsgAssembler] attaches those to the join/leave event before
it.

Note the o2net idle time: the kernel prints ``%lu.%lu secs`` from milliseconds without
zero-padding the fraction, so ``3.7 secs`` means 3007 ms; `KernelEvent.duration_ms`
holds the exact value.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any

from attrs import evolve, field, frozen

from ocfs2lab.formats._text import strip_ansi

__all__ = [
    "ERROR_KINDS",
    "EventKind",
    "KernelEvent",
    "KmsgAssembler",
    "MlogPrefix",
    "parse_kernel_line",
    "parse_kernel_log",
]


class EventKind(enum.StrEnum):
    """What a kernel log line says."""

    O2NET_CONNECTED = "o2net_connected"
    """``o2net: Connected to`` / ``Accepted connection from`` a node (``detail`` says which)."""
    O2NET_IDLE = "o2net_idle"
    """A connection has been idle past the idle timeout (``duration_ms``)."""
    O2NET_LOST = "o2net_lost"
    """``o2net: No longer connected to node ...``: the best marker of a declared death."""
    O2NET_SHUTDOWN = "o2net_shutdown"
    """A connection's socket shut down (``state`` in ``detail``)."""
    O2NET_CONNECT_FAILED = "o2net_connect_failed"
    """A connect attempt failed (``errno``)."""
    O2NET_NO_CONNECTION = "o2net_no_connection"
    """No connection established with a node within the idle timeout."""
    O2NET_CONFIG_MISMATCH = "o2net_config_mismatch"
    """A peer uses other timeouts or protocol version; o2net disconnects it."""
    O2HB_START = "o2hb_start"
    """``o2hb: Heartbeat started on region ...``."""
    O2HB_STOP = "o2hb_stop"
    """``o2hb: Heartbeat stopped`` (or ``start aborted``, in ``detail``) on a region."""
    O2HB_WRITE_HUNG = "o2hb_write_hung"
    """``o2hb: node N hb write hung for Ns on region ...`` (node ``None``: all nodes)."""
    O2HB_WRITE_TIMEOUT = "o2hb_write_timeout"
    """``Heartbeat write timeout to device ... after N milliseconds`` (mlog ERROR)."""
    O2HB_NODE_UP = "o2hb_node_up"
    """``Node N (id 0x...) joined my region`` (only with the HEARTBEAT mlog debug mask)."""
    O2HB_NODE_DOWN = "o2hb_node_down"
    """``Node N left my region`` (only with the HEARTBEAT mlog debug mask)."""
    DLM_JOIN = "dlm_join"
    """A node joins a DLM domain (``detail='self'``: this node is joining)."""
    DLM_LEAVE = "dlm_leave"
    """A node leaves a DLM domain (``detail='self'``: this node is leaving)."""
    DLM_EVICTED = "dlm_evicted"
    """``o2cb: o2dlm has evicted node N from domain ...``."""
    RECOVERY_WAIT = "recovery_wait"
    """``o2dlm: Waiting on the death/recovery of node N`` (``detail``: death or recovery)."""
    RECOVERY_BEGIN = "recovery_begin"
    """``o2dlm: Begin recovery on domain ... for node N``."""
    RECOVERY_MASTER = "recovery_master"
    """``o2dlm: Node N (me) is the Recovery Master for the dead node M``."""
    RECOVERY_NOT_MASTER = "recovery_not_master"
    """``o2dlm: Node N (he) is the Recovery Master ...``: another node recovers."""
    RECOVERY_END = "recovery_end"
    """``o2dlm: End recovery on domain ...``."""
    DLM_ERROR = "dlm_error"
    """A lock request failed: ``DLM error -22 while calling ocfs2_dlm_lock on resource ...``
    or ``dlm status = DLM_IVLOCKID`` (``errno`` or ``detail``), e.g. on a node that was
    evicted from the domain while it was frozen and runs on."""
    JOURNAL_REPLAY_BEGIN = "journal_replay_begin"
    """``ocfs2: Begin replay journal (node N, slot S) on device (MAJ,MIN)``."""
    JOURNAL_REPLAY_END = "journal_replay_end"
    """``ocfs2: End replay journal ...``."""
    QUORUM_FENCE = "quorum_fence"
    """o2quo decided to fence this node (mlog ERROR); a fence follows."""
    QUORUM_NO_FENCE = "quorum_no_fence"
    """o2quo decided not to fence this node."""
    FENCE_RESTART = "fence_restart"
    """``*** ocfs2 is very sorry to be fencing this system by restarting ***``."""
    FENCE_PANIC = "fence_panic"
    """The same fence by panic (fence_method=panic): ``Kernel panic - not syncing: *** ...``."""
    OCFS2_MOUNT = "ocfs2_mount"
    """``ocfs2: Mounting device (MAJ,MIN) on (node N, slot S) with ... data mode.``."""
    OCFS2_UMOUNT = "ocfs2_umount"
    """``ocfs2: Unmounting device (MAJ,MIN) on (node N)``."""
    OCFS2_UNCLEAN = "ocfs2_unclean"
    """``ocfs2: File system on device ... was not unmounted cleanly, recovering it.``."""
    OCFS2_ERROR = "ocfs2_error"
    """``OCFS2: ERROR (device ...)`` or ``OCFS2: abort``: on-disk inconsistency."""
    OCFS2_NODE_DOWN = "ocfs2_node_down"
    """``ocfs2: Node N/S down. Initiating recovery.``: fs/dlm told ocfs2 (userspace stack)
    that node N (slot S) is gone."""
    FSDLM_RECOVER_BEGIN = "fsdlm_recover_begin"
    """fs/dlm: ``dlm: <lockspace>: dlm_recover <seq>``: a lockspace recovery starts."""
    FSDLM_MEMBER_REMOVED = "fsdlm_member_removed"
    """fs/dlm: ``dlm: <lockspace>: remove member N``."""
    FSDLM_MEMBER_ADDED = "fsdlm_member_added"
    """fs/dlm: ``dlm: <lockspace>: add member N``."""
    FSDLM_RECOVER_DONE = "fsdlm_recover_done"
    """fs/dlm: ``dlm: <lockspace>: dlm_recover <seq> generation <g> done: <ms> ms``
    (``duration_ms``)."""
    FSDLM_CONNECTION_CLOSED = "fsdlm_connection_closed"
    """fs/dlm: ``dlm: closing connection to node N``."""
    FSDLM_JOINED = "fsdlm_joined"
    """fs/dlm: ``dlm: <lockspace>: join complete``."""
    COROSYNC_TOKEN_LOST = "corosync_token_lost"  # noqa: S105 (not a password)
    """corosync (forwarded): the token was not received in time; a new membership follows."""
    COROSYNC_LINK_DOWN = "corosync_link_down"
    """corosync (forwarded): knet's link to host N is down."""
    COROSYNC_LINK_UP = "corosync_link_up"
    """corosync (forwarded): knet's link to host N is up."""
    COROSYNC_MEMBERSHIP = "corosync_membership"
    """corosync (forwarded): a new membership was formed; ``detail`` ``left`` or ``joined``,
    ``members`` the node ids that left (or joined)."""
    COROSYNC_MEMBERS = "corosync_members"
    """corosync (forwarded): ``[QUORUM] Members[N]: ...``: the members now (``members``)."""
    QUORUM_LOST = "quorum_lost"
    """corosync (forwarded): this node is in the non-primary component (no quorum)."""
    QUORUM_REGAINED = "quorum_regained"
    """corosync (forwarded): this node is in the primary component (quorate)."""
    FENCE_REQUEST = "fence_request"
    """A node asked for node N to be fenced (``detail``: ``agent``, the lab's fence agent,
    or ``dlm_controld``)."""
    FENCE_DONE = "fence_done"
    """Node N's fence succeeded (the agent's answer, or dlm_controld's result 0)."""
    FENCE_FAILED = "fence_failed"
    """Node N's fence failed or timed out (dlm_controld tries again)."""
    DRBD_STATE = "drbd_state"
    """A DRBD state change line (``role( Secondary -> Primary ) ...``)."""
    KERNEL_BUG = "kernel_bug"
    """``kernel BUG at``, ``BUG: ...`` (NULL dereference, soft lockup, ...), hard lockup, RCU
    stall."""
    KERNEL_OOPS = "kernel_oops"
    """An oops header: ``Oops: 0002 [#1] PREEMPT SMP NOPTI`` and the like."""
    KERNEL_WARNING = "kernel_warning"
    """``WARNING: CPU: N PID: N at ...``."""
    KERNEL_PANIC = "kernel_panic"
    """``Kernel panic - not syncing: ...`` (other than an ocfs2 fence)."""
    HUNG_TASK = "hung_task"
    """``INFO: task comm:pid blocked for more than N seconds.``."""
    UNKNOWN = "unknown"
    """Anything else (``subsystem`` is still set when the prefix is recognised)."""


#: Kinds that mean the kernel is in trouble: a wait on the timeline fails at once on these.
ERROR_KINDS = frozenset(
    {
        EventKind.KERNEL_BUG,
        EventKind.KERNEL_OOPS,
        EventKind.KERNEL_WARNING,
        EventKind.KERNEL_PANIC,
        EventKind.HUNG_TASK,
        EventKind.OCFS2_ERROR,
    }
)


@frozen
class MlogPrefix:
    """The OCFS2 mlog prefix ``(comm,pid,cpu):function:line [ERROR: ]``.

    Attributes:
        comm: Task name (``None`` when the line was given without the parenthesised part).
        pid: Task pid.
        cpu: CPU number.
        function: Kernel function that logged.
        line: Source line in that function's file.
        error: The message is an ``ML_ERROR`` one.
    """

    comm: str | None
    pid: int | None
    cpu: int | None
    function: str
    line: int
    error: bool = False


@frozen
class KernelEvent:
    """One kernel message, typed.

    Only the attributes the message carries are set; the rest are ``None``.

    Attributes:
        kind: What the message says.
        raw: The line(s) as given (member-list fragments joined by ``\\n``).
        message: The message with every prefix removed.
        subsystem: ``o2net``, ``o2hb``, ``o2quo``, ``o2dlm``, ``o2cb``, ``ocfs2``, ``drbd``,
            ``kernel``, or ``None``.
        timestamp: Seconds since boot from a ``[...]`` or ``/dev/kmsg`` prefix.
        priority: Log level 0..7 from a ``<N>`` or ``/dev/kmsg`` prefix.
        sequence: ``/dev/kmsg`` sequence number.
        mlog: The mlog prefix, for OCFS2 ``mlog()`` messages.
        node: The node the message is about (peer, joining or evicted node, dead node of a
            recovery begin, the replayed node, ...).
        node_name: That node's name (o2net).
        address: That node's IPv4 address (o2net).
        port: That node's o2net port.
        domain: DLM domain (the volume UUID).
        members: Domain members after a join or leave (set by
            [`KmsgAssembler`][ocfs2lab.formats.kmsg.KmsgAssembler]).
        master: The recovery master node.
        dead_node: The dead node being recovered.
        device: ``(major, minor)`` of a block device (ocfs2 messages).
        device_name: Kernel name of a block device (``vdb``, ``drbd0``).
        slot: OCFS2 slot.
        region: o2hb region name.
        duration_ms: A time the message reports (idle, hung write, timeout, hung task).
        errno: An error number the message reports.
        heartbeating: o2quo: nodes heartbeating.
        connected: o2quo: nodes connected.
        lowest: o2quo: lowest active node.
        reachable: o2quo: the lowest node is reachable.
        quorum: o2quo: nodes needed for a quorum.
        drbd_resource: DRBD resource name.
        drbd_volume: DRBD volume number.
        drbd_minor: DRBD device minor.
        drbd_peer: DRBD peer (connection) name.
        state_changes: DRBD ``(field, old, new)`` changes, in order.
        task: Task name (hung task, soft lockup, WARNING's PID owner).
        pid: Task pid.
        location: Source location or symbol (``fs/ocfs2/alloc.c:123``, ``func+0x1/0x2``).
        detail: A qualifier: DRBD state tag, mount data mode, o2net direction, ...
    """

    kind: EventKind
    raw: str
    message: str
    subsystem: str | None = None
    timestamp: float | None = None
    priority: int | None = None
    sequence: int | None = None
    mlog: MlogPrefix | None = None
    node: int | None = None
    node_name: str | None = None
    address: ipaddress.IPv4Address | None = None
    port: int | None = None
    domain: str | None = None
    members: tuple[int, ...] | None = None
    master: int | None = None
    dead_node: int | None = None
    device: tuple[int, int] | None = None
    device_name: str | None = None
    slot: int | None = None
    region: str | None = None
    duration_ms: int | None = None
    errno: int | None = None
    heartbeating: int | None = None
    connected: int | None = None
    lowest: int | None = None
    reachable: bool | None = None
    quorum: int | None = None
    drbd_resource: str | None = None
    drbd_volume: int | None = None
    drbd_minor: int | None = None
    drbd_peer: str | None = None
    state_changes: tuple[tuple[str, str, str], ...] = field(default=())
    task: str | None = None
    pid: int | None = None
    location: str | None = None
    detail: str | None = None

    @property
    def is_error(self) -> bool:
        """The kernel is in trouble: BUG, oops, WARNING, panic, hung task, OCFS2 ERROR.

        An ocfs2 fence (restart or panic) is not an error here: it is the expected outcome
        of a partition experiment.
        """
        return self.kind in ERROR_KINDS

    @property
    def seconds(self) -> float | None:
        """`duration_ms` in seconds."""
        return None if self.duration_ms is None else self.duration_ms / 1000

    def change(self, name: str) -> tuple[str, str] | None:
        """For a DRBD state line, ``(old, new)`` of state field ``name`` (``role``, ``disk``,
        ``conn``, ...), or ``None`` when it did not change."""
        for key, old, new in self.state_changes:
            if key == name:
                return old, new
        return None


# ----------------------------------------------------------------------------------------
# Prefixes

_KMSG = re.compile(r"(?P<prio>\d+),(?P<seq>\d+),(?P<usec>\d+),[^;]*;")
_SYSLOG = re.compile(
    r"(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT[\d:.]+(?:[+-][\d:]{4,5}|Z)?)"
    r" \S+ kernel: "
)
_DMESG_X = re.compile(
    r"(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|local\d)\s*:"
    r"\s*(?P<level>emerg|alert|crit|err|warn|notice|info|debug)\s*: "
)
_LEVELS = {
    "emerg": 0,
    "alert": 1,
    "crit": 2,
    "err": 3,
    "warn": 4,
    "notice": 5,
    "info": 6,
    "debug": 7,
}
_PRIO = re.compile(r"<(?P<prio>\d{1,3})>")
_TIME = re.compile(r"\[\s*(?P<ts>\d+\.\d+)\](?:\[\s*[TC]\d+\])? ?")
_WALLTIME = re.compile(r"\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\] ?")
# With the "(comm,pid,cpu):" part any function name; without it (a line quoted from a log
# reader that cut it) only the OCFS2 stack's own function names, to avoid false matches.
_MLOG = re.compile(
    r"(?:\((?P<comm>.{0,16}?),(?P<pid>\d+),(?P<cpu>\d+)\):(?P<func>[A-Za-z_][A-Za-z0-9_.]*)"
    r"|(?P<bare>(?:o2|dlm|ocfs2|__|user_dlm|dlmfs)[A-Za-z0-9_.]*))"
    r":(?P<line>\d+) (?P<err>ERROR: )?"
)


def _strip_prefixes(line: str) -> tuple[str, dict[str, Any]]:
    info: dict[str, Any] = {}
    text = strip_ansi(line).rstrip("\r\n")
    if m := _KMSG.match(text):
        prio = int(m.group("prio"))
        info["priority"] = prio & 7
        info["sequence"] = int(m.group("seq"))
        info["timestamp"] = int(m.group("usec")) / 1_000_000
        text = text[m.end() :]
    if m := _SYSLOG.match(text):
        text = text[m.end() :]
    elif m := _DMESG_X.match(text):
        info["priority"] = _LEVELS[m.group("level")]
        text = text[m.end() :]
    if m := _PRIO.match(text):
        info["priority"] = int(m.group("prio")) & 7
        text = text[m.end() :]
    if m := _TIME.match(text):
        info["timestamp"] = float(m.group("ts"))
        text = text[m.end() :]
    elif m := _WALLTIME.match(text):
        text = text[m.end() :]
    if m := _MLOG.match(text):
        comm = m.group("comm")
        info["mlog"] = MlogPrefix(
            comm=comm,
            pid=int(m.group("pid")) if comm is not None else None,
            cpu=int(m.group("cpu")) if comm is not None else None,
            function=m.group("func") if comm is not None else m.group("bare"),
            line=int(m.group("line")),
            error=m.group("err") is not None,
        )
        text = text[m.end() :]
    return text.rstrip(), info


# ----------------------------------------------------------------------------------------
# Messages

_Handler = Callable[[re.Match[str]], dict[str, Any]]
_PATTERNS: list[tuple[re.Pattern[str], _Handler]] = []


def _pattern(regex: str) -> Callable[[_Handler], _Handler]:
    def register(handler: _Handler) -> _Handler:
        _PATTERNS.append((re.compile(regex), handler))
        return handler

    return register


def _ip(text: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        return None


# SC_NODEF_FMT, fs/ocfs2/cluster/tcp.c:63: "node %s (num %u) at %pI4:%u"
_NODEF = r"node (?P<name>.+?) \(num (?P<num>\d+)\) at (?P<ip>[\d.]+):(?P<port>\d+)"


def _nodef(m: re.Match[str]) -> dict[str, Any]:
    return {
        "node": int(m.group("num")),
        "node_name": m.group("name"),
        "address": _ip(m.group("ip")),
        "port": int(m.group("port")),
        "subsystem": "o2net",
    }


def _ms(secs: str, frac: str) -> int:
    # "%lu.%lu" of msecs / 1000 and msecs % 1000: the fraction is not zero-padded.
    return int(secs) * 1000 + int(frac)


@_pattern(r"o2net: (?P<dir>Connected to|Accepted connection from) " + _NODEF)  # tcp.c:547
def _o2net_connected(m: re.Match[str]) -> dict[str, Any]:
    detail = "connected" if m.group("dir") == "Connected to" else "accepted"
    return {"kind": EventKind.O2NET_CONNECTED, "detail": detail, **_nodef(m)}


@_pattern(r"o2net: No longer connected to " + _NODEF)  # tcp.c:539
def _o2net_lost(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.O2NET_LOST, **_nodef(m)}


@_pattern(  # tcp.c:1524
    r"o2net: Connection to " + _NODEF + r" has been idle for (?P<s>\d+)\.(?P<f>\d+) secs\."
)
def _o2net_idle(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.O2NET_IDLE,
        "duration_ms": _ms(m.group("s"), m.group("f")),
        **_nodef(m),
    }


@_pattern(r"o2net: Connection to " + _NODEF + r" shutdown, state (?P<state>\d+)")  # tcp.c:638
def _o2net_shutdown(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.O2NET_SHUTDOWN, "detail": f"state {m.group('state')}", **_nodef(m)}


@_pattern(r"o2net: Connect attempt to " + _NODEF + r" failed with errno (?P<errno>-?\d+)")
def _o2net_connect_failed(m: re.Match[str]) -> dict[str, Any]:  # tcp.c:1672
    return {"kind": EventKind.O2NET_CONNECT_FAILED, "errno": int(m.group("errno")), **_nodef(m)}


@_pattern(  # tcp.c:1696
    r"o2net: No connection established with node (?P<num>\d+) after (?P<s>\d+)\.(?P<f>\d+) "
    r"seconds, check network and cluster configuration\."
)
def _o2net_no_connection(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.O2NET_NO_CONNECTION,
        "subsystem": "o2net",
        "node": int(m.group("num")),
        "duration_ms": _ms(m.group("s"), m.group("f")),
    }


@_pattern(  # tcp.c:1287, 1305, 1316, 1327
    r"o2net: " + _NODEF + r" (?P<what>Advertised net protocol version \d+ but \d+ is required"
    r"|uses a (?:network idle timeout|keepalive delay|heartbeat timeout) of \d+ ms, but we "
    r"use \d+ ms locally)\. Disconnecting\."
)
def _o2net_mismatch(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.O2NET_CONFIG_MISMATCH, "detail": m.group("what"), **_nodef(m)}


# o2hb region and device: "region %s (%pg)"
_REGION = r"region (?P<region>\S+) \((?P<dev>[^)]*)\)"


@_pattern(r"o2hb: Heartbeat started on " + _REGION)  # heartbeat.c:1987
def _o2hb_start(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.O2HB_START,
        "subsystem": "o2hb",
        "region": m.group("region"),
        "device_name": m.group("dev"),
    }


@_pattern(r"o2hb: Heartbeat (?P<how>stopped|start aborted) on " + _REGION)  # heartbeat.c:2199
def _o2hb_stop(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.O2HB_STOP,
        "subsystem": "o2hb",
        "detail": m.group("how"),
        "region": m.group("region"),
        "device_name": m.group("dev"),
    }


@_pattern(  # heartbeat.c:429 and 464
    r"o2hb: node (?P<node>\d+) hb write hung for (?P<s>\d+)s on "
    + _REGION
    + r"(?:, negotiate timeout with node (?P<master>\d+))?\."
)
def _o2hb_hung(m: re.Match[str]) -> dict[str, Any]:
    master = m.group("master")
    return {
        "kind": EventKind.O2HB_WRITE_HUNG,
        "subsystem": "o2hb",
        "node": int(m.group("node")),
        "duration_ms": int(m.group("s")) * 1000,
        "region": m.group("region"),
        "device_name": m.group("dev"),
        "master": None if master is None else int(master),
    }


@_pattern(r"o2hb: all nodes hb write hung, maybe " + _REGION + r" is down\.")  # heartbeat.c:444
def _o2hb_all_hung(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.O2HB_WRITE_HUNG,
        "subsystem": "o2hb",
        "detail": "all nodes",
        "region": m.group("region"),
        "device_name": m.group("dev"),
    }


@_pattern(  # heartbeat.c:301 (mlog ML_ERROR)
    r"Heartbeat write timeout to device (?P<dev>\S+) after (?P<ms>\d+) milliseconds"
)
def _o2hb_timeout(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.O2HB_WRITE_TIMEOUT,
        "subsystem": "o2hb",
        "device_name": m.group("dev"),
        "duration_ms": int(m.group("ms")),
    }


@_pattern(r"Node (?P<node>\d+) \(id 0x[0-9a-f]+\) joined my region")  # heartbeat.c:1023
def _o2hb_up(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.O2HB_NODE_UP, "subsystem": "o2hb", "node": int(m.group("node"))}


@_pattern(r"Node (?P<node>\d+) left my region")  # heartbeat.c:1073
def _o2hb_down(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.O2HB_NODE_DOWN, "subsystem": "o2hb", "node": int(m.group("node"))}


@_pattern(  # quorum.c:152 (mlog ML_NOTICE)
    r"not fencing this node, heartbeating: (?P<hb>\d+), connected: (?P<conn>\d+), "
    r"lowest: (?P<low>\d+) \((?P<un>un)?reachable\)"
)
def _quorum_no_fence(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.QUORUM_NO_FENCE,
        "subsystem": "o2quo",
        "heartbeating": int(m.group("hb")),
        "connected": int(m.group("conn")),
        "lowest": int(m.group("low")),
        "reachable": m.group("un") is None,
    }


@_pattern(  # quorum.c:115 and 129 (mlog ML_ERROR)
    r"fencing this node because it is only connected to (?P<conn>\d+) nodes and (?P<q>\d+) "
    r"is needed to make a quorum out of (?P<hb>\d+) heartbeating nodes"
)
def _quorum_fence_short(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.QUORUM_FENCE,
        "subsystem": "o2quo",
        "connected": int(m.group("conn")),
        "quorum": int(m.group("q")),
        "heartbeating": int(m.group("hb")),
    }


@_pattern(  # quorum.c:138 (mlog ML_ERROR)
    r"fencing this node because it is connected to a half-quorum of (?P<q>\d+) out of "
    r"(?P<hb>\d+) nodes which doesn't include the lowest active node (?P<low>\d+)"
)
def _quorum_fence_half(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.QUORUM_FENCE,
        "subsystem": "o2quo",
        "quorum": int(m.group("q")),
        "connected": int(m.group("q")),
        "heartbeating": int(m.group("hb")),
        "lowest": int(m.group("low")),
        "reachable": False,
    }


@_pattern(r"\*\*\* ocfs2 is very sorry to be fencing this system by restarting \*\*\*")
def _fence_restart(m: re.Match[str]) -> dict[str, Any]:  # quorum.c:70
    return {"kind": EventKind.FENCE_RESTART, "subsystem": "o2quo", "detail": "reset"}


@_pattern(  # quorum.c:62 through panic(), kernel/panic.c:333 (and the end marker, :440)
    r"(?:---\[ end )?Kernel panic - not syncing: \*\*\* ocfs2 is very sorry to be fencing "
    r"this system by panicing \*\*\*(?: \]---)?"
)
def _fence_panic(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.FENCE_PANIC, "subsystem": "o2quo", "detail": "panic"}


# o2dlm member list, dlmdomain.c:535-541: "( " "%d " ... ") %u nodes\n"
_MEMBERS = r"(?: \( (?P<members>(?:\d+ )*)\) (?P<count>\d+) nodes)?"


def _members(m: re.Match[str]) -> dict[str, Any]:
    if m.group("count") is None:
        return {}
    return {"members": tuple(int(x) for x in m.group("members").split())}


@_pattern(r"o2dlm: Node (?P<node>\d+) joins domain (?P<domain>\S+)" + _MEMBERS)  # dlmdomain:942
def _dlm_join(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.DLM_JOIN,
        "subsystem": "o2dlm",
        "node": int(m.group("node")),
        "domain": m.group("domain"),
        **_members(m),
    }


@_pattern(r"o2dlm: Joining domain (?P<domain>\S+)" + _MEMBERS)  # dlmdomain.c:1689
def _dlm_join_self(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.DLM_JOIN,
        "subsystem": "o2dlm",
        "detail": "self",
        "domain": m.group("domain"),
        **_members(m),
    }


@_pattern(r"o2dlm: Node (?P<node>\d+) leaves domain (?P<domain>\S+)" + _MEMBERS)  # dlmdomain:561
def _dlm_leave(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.DLM_LEAVE,
        "subsystem": "o2dlm",
        "node": int(m.group("node")),
        "domain": m.group("domain"),
        **_members(m),
    }


@_pattern(r"o2dlm: Leaving domain (?P<domain>\S+)")  # dlmdomain.c:718
def _dlm_leave_self(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.DLM_LEAVE,
        "subsystem": "o2dlm",
        "detail": "self",
        "domain": m.group("domain"),
        "members": (),
    }


@_pattern(r"o2cb: o2dlm has evicted node (?P<node>\d+) from domain (?P<domain>\S+)")
def _dlm_evicted(m: re.Match[str]) -> dict[str, Any]:  # stack_o2cb.c:312
    return {
        "kind": EventKind.DLM_EVICTED,
        "subsystem": "o2cb",
        "node": int(m.group("node")),
        "domain": m.group("domain"),
    }


@_pattern(  # dlmrecovery.c:343 and 360
    r"o2dlm: Waiting on the (?P<what>death|recovery) of node (?P<node>\d+) in domain "
    r"(?P<domain>\S+)"
)
def _recovery_wait(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.RECOVERY_WAIT,
        "subsystem": "o2dlm",
        "detail": m.group("what"),
        "node": int(m.group("node")),
        "dead_node": int(m.group("node")),
        "domain": m.group("domain"),
    }


@_pattern(r"o2dlm: Begin recovery on domain (?P<domain>\S+) for node (?P<node>\d+)")
def _recovery_begin(m: re.Match[str]) -> dict[str, Any]:  # dlmrecovery.c:404
    return {
        "kind": EventKind.RECOVERY_BEGIN,
        "subsystem": "o2dlm",
        "domain": m.group("domain"),
        "node": int(m.group("node")),
        "dead_node": int(m.group("node")),
    }


@_pattern(r"o2dlm: End recovery on domain (?P<domain>\S+)")  # dlmrecovery.c:415
def _recovery_end(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.RECOVERY_END, "subsystem": "o2dlm", "domain": m.group("domain")}


@_pattern(  # dlmrecovery.c:421
    r"o2dlm: Node (?P<master>\d+) \((?P<who>me|he)\) is the Recovery Master for the dead "
    r"node (?P<dead>\d+) in domain (?P<domain>\S+)"
)
def _recovery_master(m: re.Match[str]) -> dict[str, Any]:
    me = m.group("who") == "me"
    return {
        "kind": EventKind.RECOVERY_MASTER if me else EventKind.RECOVERY_NOT_MASTER,
        "subsystem": "o2dlm",
        "master": int(m.group("master")),
        "node": int(m.group("dead")),
        "dead_node": int(m.group("dead")),
        "domain": m.group("domain"),
    }


@_pattern(  # dlmglue.c ocfs2_log_dlm_error
    r"DLM error (?P<errno>-?\d+) while calling (?P<func>\S+) on resource (?P<res>\S+)"
)
def _dlm_error(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.DLM_ERROR,
        "subsystem": "ocfs2",
        "errno": int(m.group("errno")),
        "detail": f"{m.group('func')} {m.group('res')}",
    }


@_pattern(r"dlm status = (?P<status>DLM_[A-Z_]+)")  # dlmcommon.h dlm_error()
def _dlm_status(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.DLM_ERROR, "subsystem": "o2dlm", "detail": m.group("status")}


_DEV = r"\((?P<major>\d+),(?P<minor>\d+)\)"


def _device(m: re.Match[str]) -> tuple[int, int]:
    return int(m.group("major")), int(m.group("minor"))


@_pattern(  # journal.c:1718 and 1773
    r"ocfs2: (?P<what>Begin|End) replay journal \(node (?P<node>\d+), slot (?P<slot>-?\d+)\) "
    r"on device " + _DEV
)
def _journal(m: re.Match[str]) -> dict[str, Any]:
    begin = m.group("what") == "Begin"
    return {
        "kind": EventKind.JOURNAL_REPLAY_BEGIN if begin else EventKind.JOURNAL_REPLAY_END,
        "subsystem": "ocfs2",
        "node": int(m.group("node")),
        "slot": int(m.group("slot")),
        "device": _device(m),
    }


@_pattern(  # super.c:1126
    r"ocfs2: Mounting device " + _DEV + r" on \(node (?P<node>\d+|local|N/A), slot "
    r"(?P<slot>-?\d+)\) with (?P<mode>\S+) data mode\."
)
def _mount(m: re.Match[str]) -> dict[str, Any]:
    node = m.group("node")
    return {
        "kind": EventKind.OCFS2_MOUNT,
        "subsystem": "ocfs2",
        "device": _device(m),
        "node": int(node) if node.isdigit() else None,
        "slot": int(m.group("slot")),
        "detail": m.group("mode") if node.isdigit() else f"{m.group('mode')}, {node}",
    }


@_pattern(r"ocfs2: Unmounting device " + _DEV + r" on \(node (?P<node>\d+|local|N/A)\)")
def _umount(m: re.Match[str]) -> dict[str, Any]:  # super.c:1938
    node = m.group("node")
    return {
        "kind": EventKind.OCFS2_UMOUNT,
        "subsystem": "ocfs2",
        "device": _device(m),
        "node": int(node) if node.isdigit() else None,
        "detail": None if node.isdigit() else node,
    }


@_pattern(  # super.c:2422
    r"ocfs2: File system on device " + _DEV + r" was not unmounted cleanly, recovering it\."
)
def _unclean(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.OCFS2_UNCLEAN, "subsystem": "ocfs2", "device": _device(m)}


@_pattern(r"OCFS2: (?P<what>ERROR|abort) \(device (?P<dev>[^)]*)\): (?P<func>[^:]+): (?P<msg>.*)")
def _ocfs2_error(m: re.Match[str]) -> dict[str, Any]:  # super.c:2568 and 2590
    return {
        "kind": EventKind.OCFS2_ERROR,
        "subsystem": "ocfs2",
        "device_name": m.group("dev"),
        "location": m.group("func"),
        "detail": m.group("what"),
    }


# DRBD state changes: 8.4 in-tree (drbd_state.c:743-813) and DRBD 9 (print_state_change,
# "... [tag]"). Prefixes: "block drbdN: " (6.1 device, dev_printk), "drbd RES: " (resource,
# connection), "drbd RES/VOL drbdN: " (6.12 in-tree and DRBD 9 device), "drbd RES PEER: " and
# "drbd RES/VOL drbdN PEER: " (DRBD 9 connection and peer device).
_DRBD_PREFIX = (
    r"(?:block drbd(?P<bminor>\d+)|drbd (?:/unregistered/)?(?P<res>[^\s/:]+)"
    r"(?:/(?P<vol>\d+) drbd(?P<minor>\d+))?(?: (?P<peer>[^\s:]+))?): "
)
_CHANGE = re.compile(r"(?P<key>[a-z][a-z_-]*)\( (?P<old>.*?) -> (?P<new>.*?) \)")


@_pattern(
    _DRBD_PREFIX + r"(?P<changes>(?:[a-z][a-z_-]*\( .*? -> .*? \) ?)+)(?:\[(?P<tag>[^\]]*)\])?"
)
def _drbd_state(m: re.Match[str]) -> dict[str, Any]:
    minor = m.group("bminor") or m.group("minor")
    vol = m.group("vol")
    changes = tuple(
        (c.group("key"), c.group("old"), c.group("new")) for c in _CHANGE.finditer(m["changes"])
    )
    return {
        "kind": EventKind.DRBD_STATE,
        "subsystem": "drbd",
        "drbd_resource": m.group("res"),
        "drbd_volume": None if vol is None else int(vol),
        "drbd_minor": None if minor is None else int(minor),
        "drbd_peer": m.group("peer"),
        "device_name": None if minor is None else f"drbd{minor}",
        "state_changes": changes,
        "detail": m.group("tag"),
    }


# Kernel trouble.


@_pattern(r"kernel BUG at (?P<loc>[^!]+)!")  # lib/bug.c:205
def _bug_at(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.KERNEL_BUG, "subsystem": "kernel", "location": m.group("loc")}


@_pattern(  # kernel/watchdog.c:434, pr_fmt "watchdog: " (watchdog.c:13)
    r"(?:watchdog: )?BUG: soft lockup - CPU#(?P<cpu>\d+) stuck for (?P<s>\d+)s! "
    r"\[(?P<comm>.+):(?P<pid>\d+)\]"
)
def _soft_lockup(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.KERNEL_BUG,
        "subsystem": "kernel",
        "detail": "soft lockup",
        "duration_ms": int(m.group("s")) * 1000,
        "task": m.group("comm"),
        "pid": int(m.group("pid")),
    }


@_pattern(r"BUG: (?P<what>.+)")  # arch/x86/mm/fault.c:554/557, scheduling while atomic, ...
def _bug(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.KERNEL_BUG, "subsystem": "kernel", "detail": m.group("what")}


# kernel/watchdog_hld.c:142, pr_fmt "NMI watchdog: " (watchdog_hld.c:13)
@_pattern(r"(?:NMI watchdog: )?Watchdog detected hard LOCKUP on cpu (?P<cpu>\d+)")
def _hard_lockup(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.KERNEL_BUG, "subsystem": "kernel", "detail": "hard lockup"}


@_pattern(r"rcu: INFO: (?P<what>\S+ (?:self-)?detected stalls? on CPUs?.*)")
def _rcu_stall(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.KERNEL_BUG, "subsystem": "kernel", "detail": m.group("what")}


@_pattern(  # arch/x86/kernel/dumpstack.c:426 "%s: %04lx [#%d]%s%s%s%s%s"
    r"(?P<what>[A-Za-z][^:]*(?:: [^:]+)?): (?P<code>[0-9a-f]{4}) \[#(?P<n>\d+)\](?P<flags>.*)"
)
def _oops(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.KERNEL_OOPS,
        "subsystem": "kernel",
        "detail": f"{m.group('what')}: {m.group('code')} [#{m.group('n')}]",
    }


@_pattern(  # kernel/panic.c:665 and 669
    r"WARNING: CPU: (?P<cpu>\d+) PID: (?P<pid>\d+) at (?P<loc>.+)"
)
def _warning(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.KERNEL_WARNING,
        "subsystem": "kernel",
        "pid": int(m.group("pid")),
        "location": m.group("loc"),
    }


@_pattern(r"WARNING: at (?P<loc>.+)")
def _warning_short(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.KERNEL_WARNING, "subsystem": "kernel", "location": m.group("loc")}


@_pattern(  # kernel/hung_task.c:133
    r"INFO: task (?P<comm>.+):(?P<pid>\d+) blocked for more than (?P<s>\d+) seconds\."
)
def _hung_task(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.HUNG_TASK,
        "subsystem": "kernel",
        "task": m.group("comm"),
        "pid": int(m.group("pid")),
        "duration_ms": int(m.group("s")) * 1000,
    }


@_pattern(r"(?:---\[ end )?Kernel panic - not syncing: (?P<msg>.*?)(?: \]---)?")  # panic.c:333
def _panic(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.KERNEL_PANIC, "subsystem": "kernel", "detail": m.group("msg")}


# ----------------------------------------------------------------------------------------
# The userspace stack: fs/dlm and ocfs2's stack_user in the kernel; corosync, dlm_controld
# and the lab's fence agent forwarded into the kernel log ("<identifier>: <message>").


@_pattern(r"ocfs2: Node (?P<node>\d+)/(?P<slot>-?\d+) down\. Initiating recovery\.")
def _ocfs2_node_down(m: re.Match[str]) -> dict[str, Any]:  # stack_user.c:925
    return {
        "kind": EventKind.OCFS2_NODE_DOWN,
        "subsystem": "ocfs2",
        "node": int(m.group("node")),
        "slot": int(m.group("slot")),
    }


_LS = r"dlm: (?P<ls>[^:\s]+): "


@_pattern(_LS + r"dlm_recover (?P<seq>\d+)")  # recoverd.c:128
def _fsdlm_recover(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.FSDLM_RECOVER_BEGIN, "subsystem": "dlm", "domain": m.group("ls")}


@_pattern(_LS + r"dlm_recover (?P<seq>\d+) generation (?P<gen>\d+) done: (?P<ms>\d+) ms")
def _fsdlm_done(m: re.Match[str]) -> dict[str, Any]:  # recoverd.c:328
    return {
        "kind": EventKind.FSDLM_RECOVER_DONE,
        "subsystem": "dlm",
        "domain": m.group("ls"),
        "duration_ms": int(m.group("ms")),
    }


@_pattern(_LS + r"(?P<what>remove|add) member (?P<node>\d+)(?: comm_seq .*)?")  # member.c:576
def _fsdlm_member(m: re.Match[str]) -> dict[str, Any]:
    removed = m.group("what") == "remove"
    return {
        "kind": EventKind.FSDLM_MEMBER_REMOVED if removed else EventKind.FSDLM_MEMBER_ADDED,
        "subsystem": "dlm",
        "domain": m.group("ls"),
        "node": int(m.group("node")),
    }


@_pattern(_LS + r"join complete")  # lockspace.c
def _fsdlm_joined(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.FSDLM_JOINED, "subsystem": "dlm", "domain": m.group("ls")}


@_pattern(r"dlm: closing connection to node (?P<node>\d+)")  # lowcomms.c:1446
def _fsdlm_closing(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.FSDLM_CONNECTION_CLOSED,
        "subsystem": "dlm",
        "node": int(m.group("node")),
    }


_COROSYNC = r"corosync(?:\[\d+\])?:\s+"


@_pattern(_COROSYNC + r"\[KNET\s*\] link: host: (?P<node>\d+) link: (?P<link>\d+) is down")
def _knet_down(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.COROSYNC_LINK_DOWN, "subsystem": "corosync", "node": int(m["node"])}


@_pattern(_COROSYNC + r"\[KNET\s*\] (?:rx: )?host: (?P<node>\d+) link: (?P<link>\d+) is up")
def _knet_up(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.COROSYNC_LINK_UP, "subsystem": "corosync", "node": int(m["node"])}


@_pattern(
    _COROSYNC + r"\[TOTEM\s*\] (?:A processor failed, forming new configuration: token timed out"
    r"|Token has not been received in)(?P<rest>.*)"
)
def _token_lost(m: re.Match[str]) -> dict[str, Any]:
    return {"kind": EventKind.COROSYNC_TOKEN_LOST, "subsystem": "corosync", "detail": m["rest"]}


def _ids(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split() if x.isdigit())


@_pattern(
    _COROSYNC + r"\[TOTEM\s*\] A new membership \((?P<ring>[^)]*)\) was formed\. "
    r"Members(?: joined:(?P<joined>[\d ]*))?(?: left:(?P<left>[\d ]*))?\s*"
)
def _membership(m: re.Match[str]) -> dict[str, Any]:
    left = _ids(m.group("left") or "")
    changed = left or _ids(m.group("joined") or "")
    return {
        "kind": EventKind.COROSYNC_MEMBERSHIP,
        "subsystem": "corosync",
        "detail": "left" if left else "joined",
        "members": changed,
        "node": changed[0] if len(changed) == 1 else None,
    }


@_pattern(_COROSYNC + r"\[QUORUM\] Members\[(?P<count>\d+)\]:(?P<ids>[\d ]*)")
def _members_now(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.COROSYNC_MEMBERS,
        "subsystem": "corosync",
        "members": _ids(m.group("ids")),
    }


@_pattern(
    _COROSYNC + r"\[QUORUM\] This node is within the (?P<which>non-primary|primary) "
    r"component.*"
)
def _quorum(m: re.Match[str]) -> dict[str, Any]:
    lost = m.group("which") == "non-primary"
    return {
        "kind": EventKind.QUORUM_LOST if lost else EventKind.QUORUM_REGAINED,
        "subsystem": "corosync",
    }


@_pattern(r"ocfs2lab-fence: (?P<what>request|done|failed|timeout) node=(?P<node>\d+).*")
def _fence_agent(m: re.Match[str]) -> dict[str, Any]:
    kinds = {"request": EventKind.FENCE_REQUEST, "done": EventKind.FENCE_DONE}
    return {
        "kind": kinds.get(m.group("what"), EventKind.FENCE_FAILED),
        "subsystem": "fence",
        "node": int(m.group("node")),
        "detail": "agent" if m.group("what") == "request" else m.group("what"),
    }


@_pattern(r"dlm_controld(?:\[\d+\])?: (?:\d+ )?fence request (?P<node>\d+)\b.*")
def _fence_request(m: re.Match[str]) -> dict[str, Any]:
    return {
        "kind": EventKind.FENCE_REQUEST,
        "subsystem": "dlm_controld",
        "node": int(m.group("node")),
        "detail": "dlm_controld",
    }


@_pattern(
    r"dlm_controld(?:\[\d+\])?: (?:\d+ )?fence result (?P<node>\d+) pid \d+ result "
    r"(?P<result>-?\d+)\b.*"
)
def _fence_result(m: re.Match[str]) -> dict[str, Any]:
    ok = m.group("result") == "0"
    return {
        "kind": EventKind.FENCE_DONE if ok else EventKind.FENCE_FAILED,
        "subsystem": "dlm_controld",
        "node": int(m.group("node")),
        "detail": f"result {m.group('result')}",
    }


_SUBSYSTEMS = (
    (re.compile(r"o2net: "), "o2net"),
    (re.compile(r"o2hb: "), "o2hb"),
    (re.compile(r"o2dlm: "), "o2dlm"),
    (re.compile(r"o2cb: "), "o2cb"),
    (re.compile(r"(?:ocfs2|OCFS2): "), "ocfs2"),
    (re.compile(r"(?:block drbd\d+|drbd\b[^:]*): "), "drbd"),
    (re.compile(r"dlm: "), "dlm"),
    (re.compile(_COROSYNC), "corosync"),
    (re.compile(r"dlm_controld(?:\[\d+\])?: "), "dlm_controld"),
)
_MLOG_SUBSYSTEMS = (
    ("o2quo_", "o2quo"),
    ("o2hb_", "o2hb"),
    ("o2net_", "o2net"),
    ("dlm_", "o2dlm"),
    ("__dlm", "o2dlm"),
    ("o2cb_", "o2cb"),
    ("ocfs2_", "ocfs2"),
)


def _classify(message: str) -> dict[str, Any]:
    for regex, handler in _PATTERNS:
        m = regex.fullmatch(message)
        if m is not None:
            return handler(m)
    return {"kind": EventKind.UNKNOWN}


def _event(raw: str) -> KernelEvent:
    message, info = _strip_prefixes(raw)
    found = _classify(message)
    mlog: MlogPrefix | None = info.get("mlog")
    if found.get("subsystem") is None:
        for regex, name in _SUBSYSTEMS:
            if regex.match(message):
                found["subsystem"] = name
                break
        else:
            if mlog is not None:
                found["subsystem"] = next(
                    (n for p, n in _MLOG_SUBSYSTEMS if mlog.function.startswith(p)), "ocfs2"
                )
    return KernelEvent(raw=raw, message=message, **info, **found)


def parse_kernel_line(line: str) -> KernelEvent:
    """Turn one kernel log line into a typed event. Never raises.

    Args:
        line: One line (a trailing newline or ``\\r`` is fine), with or without the prefixes
            described in the module docstring. Bytes are decoded as UTF-8 with replacement.

    Returns:
        The event; [`EventKind.UNKNOWN`][ocfs2lab.formats.kmsg.EventKind.UNKNOWN] for lines of no
        known shape.
    """
    try:
        if isinstance(line, bytes | bytearray):
            line = bytes(line).decode("utf-8", "replace")
        elif not isinstance(line, str):
            line = str(line)
        return _event(line)
    except Exception:  # a bug here must not cost the caller an event
        text = line if isinstance(line, str) else repr(line)
        return KernelEvent(kind=EventKind.UNKNOWN, raw=text, message=text)


# ----------------------------------------------------------------------------------------
# Member lists after o2dlm join/leave lines

_FRAGMENT = re.compile(r"(?:\(|\)|\d+|nodes|\s)+")
_FULL_LIST = re.compile(r"\(\s*(?P<members>(?:\d+\s+)*)\)\s*(?P<count>\d+)\s+nodes")


class KmsgAssembler:
    """Feed kernel log lines, get typed events, with o2dlm member lists attached.

    A ``DLM_JOIN``/``DLM_LEAVE`` event whose member list was printed separately is held
    back until the list's closing ``) N nodes`` arrives (then it carries ``members``), or
    until ``max_interleaved`` other lines came in between (then it is released without
    members). Lines that arrive while an event is held are released after it, in order.
    Member-list fragments that belong to no join/leave become ``UNKNOWN`` events.

    Pure: no I/O, no clock. Not thread-safe.
    """

    def __init__(self, *, max_interleaved: int = 8) -> None:
        """Create an assembler.

        Args:
            max_interleaved: How many unrelated lines may arrive between a join/leave line
                and the end of its member list before the event is released without it.
        """
        self._max = max(0, max_interleaved)
        self._held: KernelEvent | None = None
        self._pieces: list[str] = []
        self._raws: list[str] = []
        self._queued: list[KernelEvent] = []

    @property
    def pending(self) -> bool:
        """An event is held back waiting for its member list."""
        return self._held is not None

    def _release(self, members: tuple[int, ...] | None) -> list[KernelEvent]:
        held = self._held
        assert held is not None
        out: list[KernelEvent] = []
        if members is not None:
            out.append(evolve(held, members=members, raw="\n".join([held.raw, *self._raws])))
        else:
            out.append(held)
            # Fragments that were taken but never completed stay visible as UNKNOWN events.
            out.extend(parse_kernel_line(r) for r in self._raws)
        out.extend(self._queued)
        self._held, self._pieces, self._raws, self._queued = None, [], [], []
        return out

    def feed(self, line: str) -> list[KernelEvent]:
        """Take one line.

        Args:
            line: One kernel log line.

        Returns:
            The events complete so far, in log order (often one, sometimes none or several).
        """
        event = parse_kernel_line(line)
        message = event.message
        is_fragment = (
            event.kind is EventKind.UNKNOWN and message != "" and bool(_FRAGMENT.fullmatch(message))
        )
        wants_members = (
            event.kind in (EventKind.DLM_JOIN, EventKind.DLM_LEAVE) and event.members is None
        )
        if self._held is not None and wants_members:
            # A new join/leave: the held one will get no list any more.
            released = self._release(None)
            self._held = event
            return released
        if self._held is not None:
            if is_fragment:
                self._pieces.append(message)
                self._raws.append(event.raw)
                joined = " ".join(self._pieces)
                full = _FULL_LIST.fullmatch(joined.strip())
                if full is not None:
                    members = tuple(int(x) for x in full.group("members").split())
                    return self._release(members)
                if not joined.lstrip().startswith("("):
                    return self._release(None)
                return []
            self._queued.append(event)
            if len(self._queued) > self._max:
                return self._release(None)
            return []
        if wants_members:
            self._held = event
            return []
        return [event]

    def flush(self) -> list[KernelEvent]:
        """Release a held event (without members if its list never completed).

        Returns:
            The events still held, in log order.
        """
        if self._held is None:
            return []
        return self._release(None)

    def feed_all(self, lines: Iterable[str]) -> list[KernelEvent]:
        """Feed every line, then flush.

        Args:
            lines: Kernel log lines.

        Returns:
            All events, in log order.
        """
        out: list[KernelEvent] = []
        for line in lines:
            out.extend(self.feed(line))
        out.extend(self.flush())
        return out


def parse_kernel_log(text: str) -> list[KernelEvent]:
    """Parse a whole kernel log (``dmesg`` output, a console capture). Never raises.

    Args:
        text: The log; lines split on ``\\n``. Blank lines are skipped.

    Returns:
        The events in order, member lists attached.
    """
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    lines = [line for line in text.split("\n") if line.strip("\r\t ") != ""]
    return KmsgAssembler().feed_all(lines)
