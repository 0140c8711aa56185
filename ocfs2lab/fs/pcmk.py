"""PcmkCluster: the userspace cluster stack, corosync + dlm_controld + the kernel's fs/dlm.

What ocfs2-tools calls the ``pcmk`` stack, without pacemaker: dlm_controld follows
corosync's membership, and fs/dlm calls into ocfs2 (``ocfs2_stack_user``) when a node leaves,
which starts the journal replay. Every node gets, through its
[`MachineChanges`][ocfs2lab.host.changes.MachineChanges] (recorded before made, given back on
exit):

1. ``/etc/corosync/corosync.conf`` (knet on the interconnect, votequorum) and
   ``/etc/dlm/dlm.conf`` (fencing by the lab's agent, or off);
2. the fence agent and a log forwarder, which copies corosync's and dlm_controld's journal
   lines into the kernel log, so that the daemons' membership, quorum and fencing messages
   reach the timeline on the host's clock like the kernel's own;
3. the modules (``dlm``, ``ocfs2_stack_user``, ``ocfs2_nodemanager``), and on a machine
   without SCTP a modprobe.d file that keeps it out while the stack runs;
4. corosync, started on every node at once and waited for until every node sees all of
   them in a quorate membership; then dlm_controld, waited for until it answers.

**Fencing.** With fencing on (dlm_controld's default), the survivors' DLM waits until a dead
node is fenced. dlm_controld runs the lab's agent, which writes ``ocfs2lab-fence: request
node=N`` to the kernel log and waits. The host watches the timeline: with
``fencing="lab"`` it powers node N off (its `Power`), records a
[`FENCED`][ocfs2lab.observe.events.LabEventKind.FENCED] event and tells the agent it is
done; with ``fencing="manual"`` the request waits for
[`acknowledge_fence`][ocfs2lab.fs.pcmk.PcmkCluster.acknowledge_fence]. A node the lab cannot
power off (an SSH machine) is never acknowledged by the lab: fence it yourself, then
acknowledge. ``fencing="none"`` turns fencing off (``enable_fencing=0``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from functools import partial
from importlib import resources
from typing import Any, cast

from ocfs2lab.errors import HostError, ParseError, SpecError
from ocfs2lab.formats.corosync import (
    COROSYNC_CONF,
    DLM_CONF,
    CorosyncNode,
    parse_dlm_status,
    parse_quorumtool,
    render_corosync_conf,
    render_dlm_conf,
)
from ocfs2lab.formats.kmsg import EventKind
from ocfs2lab.fs.stack import ClusterStack, unrecorded
from ocfs2lab.host.base import Shell
from ocfs2lab.host.changes import OCFS2_MODULES, MachineChanges
from ocfs2lab.node.base import Killable, Node, capable
from ocfs2lab.observe.events import LabEventKind, TimelineEvent
from ocfs2lab.observe.timeline import Timeline
from ocfs2lab.parallel import run_parallel
from ocfs2lab.spec.cluster import ClusterSpec
from ocfs2lab.spec.stack import PcmkSpec
from ocfs2lab.wait import wait_until

log = logging.getLogger(__name__)

#: Where the fence agent and the log forwarder go on each node.
FENCE_AGENT = "/usr/local/sbin/ocfs2lab-fence"
LOG_FORWARDER = "/usr/local/sbin/ocfs2lab-logfwd"
#: The forwarder's transient systemd unit.
LOG_UNIT = "ocfs2lab-logfwd.service"
#: Where the agent waits for the host's answer (``<nodeid>.done``).
FENCE_DIR = "/run/ocfs2lab-fence"
#: corosync's and dlm_controld's units (Debian's packages).
COROSYNC_UNIT = "corosync.service"
DLM_UNIT = "dlm.service"
#: What ``modprobe -a`` loads for the userspace stack: fs/dlm, ocfs2's plugin for it, and
#: the node manager, whose ``/sys/fs/o2cb/interface_revision`` ocfs2-tools (1.8.8) reads
#: before it mounts on any stack ("Unable to access cluster service" without it).
STACK_MODULES = ("dlm", "ocfs2_stack_user", "ocfs2_nodemanager")
#: While the stack runs, a machine that has no SCTP loaded does not load it: corosync's
#: knet probes SCTP when it starts, and once loaded the module cannot be unloaded again (its
#: count stays up with no socket left), so the machine would not be left as found. The lab
#: uses knet over UDP and fs/dlm over TCP, neither needs it.
NO_SCTP = "/etc/modprobe.d/ocfs2lab-no-sctp.conf"
#: Programs each node needs (``apt install corosync dlm-controld`` on Debian).
PROGRAMS = ("corosync", "corosync-quorumtool", "dlm_controld", "dlm_tool", "journalctl")


def _asset(name: str) -> str:
    return (resources.files("ocfs2lab.fs") / "assets" / name).read_text()


def fence_agent_script(timeout_s: int) -> str:
    """The fence agent dlm_controld runs (``fence_all``), waiting ``timeout_s`` at most."""
    return _asset("ocfs2lab-fence").replace("@TIMEOUT@", str(int(timeout_s)))


def log_forwarder_script() -> str:
    """The script that copies corosync's and dlm_controld's journal into the kernel log."""
    return _asset("ocfs2lab-logfwd")


class PcmkCluster(ClusterStack):
    """corosync + dlm_controld on a set of nodes, each with a kernel of its own.

    Args:
        nodes: The nodes, node 1 first; ``spec.nodes`` lists the same names (each node's
            number is its corosync and DLM node id).
        spec: Cluster name, node list.
        pcmk: corosync's timers and the fencing mode.
        timeline: Where the fence requests are read and the fences recorded (needed with
            ``fencing="lab"`` or ``"manual"``).
        online_timeout: Seconds to wait for the membership and the daemons.
        changes: Each node's [`MachineChanges`][ocfs2lab.host.changes.MachineChanges].
        restore: Give each node back what the stack changed there on exit.
        comment: First comment line of the files written (who wrote them).

    Raises:
        SpecError: The nodes are not the spec's, or fencing needs a timeline and none was
            given.
    """

    stack = "pcmk"

    def __init__(
        self,
        nodes: Sequence[Node],
        spec: ClusterSpec,
        pcmk: PcmkSpec | None = None,
        *,
        timeline: Timeline | None = None,
        online_timeout: float = 300.0,
        changes: Callable[[Node], MachineChanges] = unrecorded,
        restore: bool = True,
        comment: str = "written by ocfs2lab",
    ) -> None:
        super().__init__(
            nodes, spec, online_timeout=online_timeout, changes=changes, restore=restore
        )
        self.pcmk = pcmk or PcmkSpec()
        if self.pcmk.fencing != "none" and timeline is None:
            raise SpecError(
                "timeline", None, f"fencing {self.pcmk.fencing!r} reads fence requests from one"
            )
        self.timeline = timeline
        self.corosync_conf = render_corosync_conf(
            spec.name,
            [CorosyncNode(n.name, n.number, str(n.address)) for n in spec.nodes],
            token_ms=self.pcmk.token_ms,
            consensus_ms=self.pcmk.consensus,
            comment=comment,
        )
        fencing = self.pcmk.fencing != "none"
        self.dlm_conf = render_dlm_conf(
            fencing=fencing,
            agent=FENCE_AGENT if fencing else None,
            post_join_delay_s=self.pcmk.post_join_delay_s,
            comment=comment,
        )
        self.comment = comment
        #: Fence requests waiting for an acknowledgement: node id -> the requesting node.
        self.pending: dict[int, Node] = {}
        self._lock = threading.Lock()
        self._watcher: _FenceWatcher | None = None
        self._stoppers: set[tuple[str, str]] = set()

    def describe(self) -> str:
        """Name for messages."""
        return f"pcmk cluster {self.spec.name}"

    # -- building -----------------------------------------------------------------------
    def _acquire(self) -> None:
        self.undo(self._restore_nodes, "restore what the stack changed on the nodes")
        with self.step("check the programs"):
            run_parallel(list(self.nodes), self._check_programs).raise_failures(
                "check", lambda n: n.spec.name
            )
        with self.step("files, modules and log forwarder"):
            run_parallel(list(self.nodes), self._prepare_node).raise_failures(
                "prepare", lambda n: n.spec.name
            )
        if self.pcmk.fencing != "none":
            # Before any daemon runs: a fence request is answered from the first one on.
            assert self.timeline is not None
            self._say_what_fencing_can_do(self.timeline)
            self._watcher = _FenceWatcher(self, self.timeline)
            self._watcher.start()
            self.undo(self._watcher.stop, "stop answering fence requests")
        with self.step("start corosync"):
            self._start_everywhere(COROSYNC_UNIT)
        with self.step("wait for the membership"):
            self.wait_members(self.nodes)
        with self.step("start dlm_controld"):
            self._start_everywhere(DLM_UNIT)
        with self.step("wait for dlm_controld"):
            self.wait_online()

    def _say_what_fencing_can_do(self, timeline: Timeline) -> None:
        """Record (and log) which nodes the lab can fence, when it cannot fence them all."""
        manual = [n.spec.name for n in self.nodes if not capable(n, Killable)]
        if self.pcmk.fencing == "lab" and manual:
            what = (
                f"the lab cannot power {', '.join(manual)} off: a fence request for them "
                "waits until you fenced the machine yourself and called acknowledge_fence()"
            )
            log.warning("%s: %s", self.describe(), what)
            timeline.record(LabEventKind.NOTE, what)

    def _check_programs(self, node: Node) -> None:
        script = 'for p in "$@"; do command -v "$p" >/dev/null || echo "$p"; done'
        res = node.run(["sh", "-c", script, "sh", *PROGRAMS], timeout=60)
        missing = res.stdout.split()
        if missing:
            raise HostError(
                f"{node.spec.name}: the pcmk stack needs {', '.join(missing)}",
                hint="install corosync and dlm-controld (Debian: apt install corosync "
                "dlm-controld); the lab image has them",
            )

    def _prepare_node(self, node: Node) -> None:
        ch = self.changes(node)
        for directory in ("/etc/corosync", "/etc/dlm", "/usr/local/sbin"):
            self._made_on(node, "dir", directory, ch.make_dir(directory))
        files = {
            COROSYNC_CONF: (self.corosync_conf, 0o644),
            DLM_CONF: (self.dlm_conf, 0o644),
            FENCE_AGENT: (fence_agent_script(self.pcmk.fence_timeout_s), 0o755),
            LOG_FORWARDER: (log_forwarder_script(), 0o755),
        }
        if "sctp" not in cast(Shell, node).loaded_modules():
            files[NO_SCTP] = (
                f"# {self.comment}: no SCTP while the pcmk stack runs\ninstall sctp /bin/false\n",
                0o644,
            )
        for path, (text, mode) in files.items():
            self._made_on(node, "file", path, ch.write_file(path, text, mode))
        loaded = ch.load_modules("ocfs2", STACK_MODULES, OCFS2_MODULES)
        self._made_on(node, "modules", "ocfs2", loaded)
        self._made_on(node, "service", LOG_UNIT, ch.start_service(LOG_UNIT, [LOG_FORWARDER]))

    def _start_everywhere(self, unit: str, nodes: Sequence[Node] | None = None) -> None:
        which = list(self.nodes if nodes is None else nodes)
        outcome = run_parallel(which, partial(self._start, unit))
        for node, started in outcome.done:
            self._made_on(node, "service", unit, started)
            if started and (unit, node.spec.name) not in self._stoppers:
                # Stopped on exit whatever ``restore`` says: the daemons hold the DLM. A node
                # that rejoins later has its stop on the list already; a daemon that ran
                # before the lab is never stopped by it.
                self._stoppers.add((unit, node.spec.name))
                self.undo(partial(self._stop, unit, node), f"stop {unit} on {node.spec.name}")
        outcome.raise_failures(f"start {unit}", lambda n: n.spec.name)

    def _start(self, unit: str, node: Node) -> bool:
        """Start ``unit``; modules it made the kernel load (knet's SCTP probe loads SCTP's
        helper modules even with SCTP kept out) are recorded too, and unloaded after it
        stops."""
        machine = cast(Shell, node)
        before = machine.loaded_modules()
        started = self.changes(node).start_service(unit)
        if started:
            came = sorted(machine.loaded_modules() - before - set(OCFS2_MODULES))
            if came:
                key = f"{unit} side effects"
                self.changes(node).record("modules", key, names=came)
                self._made_on(node, "modules", key, True)
        return started

    def _stop(self, unit: str, node: Node) -> None:
        """Stop ``unit`` on ``node``; dlm_controld only once it holds no lockspace.

        Raises:
            HostError: dlm_controld still holds a lockspace (a mount that could not be
                undone): stopping it would hang, so it is left running.
        """
        if not node.up:
            log.info("%s is down: %s died with it", node.spec.name, unit)
            return
        if unit == DLM_UNIT:
            held = node.run(["dlm_tool", "ls"], check=False, timeout=60).stdout
            if "name" in held:
                raise HostError(
                    f"{node.spec.name}: dlm_controld still holds a lockspace; left running",
                    hint="unmount OCFS2 there, then `systemctl stop dlm corosync`; or "
                    "`ocfs2lab cleanup`",
                )
        node.run(["systemctl", "stop", unit], timeout=300)

    # -- status ---------------------------------------------------------------------------
    def quorum(self, node: Node) -> Any:
        """``corosync-quorumtool -s`` on ``node``, parsed
        ([`QuorumStatus`][ocfs2lab.formats.corosync.QuorumStatus]); ``None`` when corosync
        does not answer."""
        res = node.run(["corosync-quorumtool", "-s"], check=False, timeout=60)
        try:
            return parse_quorumtool(res.stdout)
        except ParseError:
            return None

    def online(self, node: Node) -> bool:
        """True when ``node`` is in a quorate membership and its dlm_controld answers."""
        quorum = self.quorum(node)
        if quorum is None or not quorum.quorate or node.spec.number not in quorum.members:
            return False
        res = node.run(["dlm_tool", "status"], check=False, timeout=60)
        try:
            return parse_dlm_status(res.stdout).quorate
        except ParseError:
            return False

    def wait_members(self, nodes: Sequence[Node]) -> None:
        """Wait until each of ``nodes`` sees all of them in a quorate membership.

        Raises:
            WaitTimeout: Not in time.
        """
        wanted = {n.spec.number for n in nodes}

        def together() -> bool | None:
            for node in nodes:
                q = self.quorum(node)
                if q is None or not q.quorate or not wanted <= set(q.members):
                    return None
            return True

        wait_until(
            together,
            what=f"corosync membership of {', '.join(n.spec.name for n in nodes)}",
            timeout=self.online_timeout,
            interval=1.0,
        )

    def rejoin(self, node: Node) -> None:
        """Join a node again after it was booted anew (a revive after a kill or a fence):
        files, modules and forwarder, then corosync and dlm_controld, waited for.

        Raises:
            SpecError: Not one of the cluster's nodes.
            HostError: The programs are missing.
            WaitTimeout: The node did not join the membership in time.
        """
        self._check_member(node)
        self._check_programs(node)
        self._prepare_node(node)
        self._start_everywhere(COROSYNC_UNIT, [node])
        self.wait_members([n for n in self.nodes if n.up])
        self._start_everywhere(DLM_UNIT, [node])
        self.wait_online([node])

    # -- fencing ---------------------------------------------------------------------------
    def acknowledge_fence(self, which: int | Node) -> None:
        """Tell the fence agent that the node is fenced (``fencing="manual"``, or a node the
        lab cannot power off): dlm_controld then lets the DLM recover.

        Only acknowledge a node that is really down: the DLM hands its locks to others.

        Raises:
            SpecError: No fence request for that node is waiting.
        """
        number = which if isinstance(which, int) else which.spec.number
        with self._lock:
            requester = self.pending.pop(number, None)
        if requester is None:
            raise SpecError("node", number, "has no fence request waiting")
        self._answer(requester, number, "acknowledged by hand")

    def _answer(self, requester: Node, number: int, how: str) -> None:
        requester.run(["sh", "-c", f"mkdir -p {FENCE_DIR} && touch {FENCE_DIR}/{number}.done"])
        if self.timeline is not None:
            name = self._name_of(number)
            self.timeline.record(
                LabEventKind.FENCED,
                f"fenced {name} ({how})",
                node=name,
                data={"node": number, "how": how, "requested_by": requester.spec.name},
            )

    def _name_of(self, number: int) -> str:
        return next((n.spec.name for n in self.nodes if n.spec.number == number), str(number))

    def _on_request(self, event: TimelineEvent) -> None:
        """Answer one fence request (the watcher's thread)."""
        number = event.about
        requester = next((n for n in self.nodes if n.spec.name == event.node), None)
        victim = next((n for n in self.nodes if n.spec.number == number), None)
        if number is None or requester is None or victim is None:
            log.warning("a fence request the lab cannot place: %s", event)
            return
        assert self.timeline is not None
        if self.pcmk.fencing == "manual" or not capable(victim, Killable):
            with self._lock:
                self.pending[number] = requester
            why = (
                "fencing is manual"
                if self.pcmk.fencing == "manual"
                else (f"the lab cannot power a {victim.kind} node off")
            )
            self.timeline.record(
                LabEventKind.NOTE,
                f"fence of {victim.spec.name} waits: {why}; power it off, then call "
                "acknowledge_fence()",
                node=victim.spec.name,
            )
            return
        killable = cast(Killable, victim)
        if killable.running:
            killable.kill()
            how = "powered off by the lab"
        else:
            how = "already off"
        self._answer(requester, number, how)


class _FenceWatcher:
    """A thread that answers the fence requests appearing on the timeline."""

    def __init__(self, stack: PcmkCluster, timeline: Timeline) -> None:
        self.stack = stack
        self.timeline = timeline
        self._stop = threading.Event()
        self._since = timeline.now()
        self._seen: set[int] = set()
        self._thread = threading.Thread(target=self._run, name="ocfs2lab-fence", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        # Each pass looks at the requests that arrived since the last; the wait between
        # passes ends at once when the cluster stops.
        while not self._stop.wait(0.2):
            for event in self.timeline.events(EventKind.FENCE_REQUEST, since=self._since):
                # The agent's own request; dlm_controld's line about it is the same request.
                agent = event.kernel is not None and event.kernel.detail == "agent"
                if event.seq in self._seen or not agent:
                    continue
                self._seen.add(event.seq)
                try:
                    self.stack._on_request(event)
                except Exception as err:  # a failed answer is recorded; the agent times out
                    log.warning("answering %s: %s", event, err)
                    self.timeline.record(
                        LabEventKind.NOTE, f"the lab could not answer a fence request: {err}"
                    )


__all__ = [
    "FENCE_AGENT",
    "LOG_FORWARDER",
    "PcmkCluster",
    "fence_agent_script",
    "log_forwarder_script",
]
