"""What the kernels did after a fault, read from the timeline (pure: no machine is touched).

[`analyze_recovery`][ocfs2lab.experiment.analysis.analyze_recovery] takes the timeline's events and
the fault's time and returns the [`RecoveryTimes`][ocfs2lab.experiment.analysis.RecoveryTimes]: when
the survivors noticed the victim, lost its connection, evicted it, began and ended DLM recovery and
replayed its journal; which node was recovery master; which nodes fenced themselves; and whether the
survivors' steps came in the kernel's order. It is tested on events captured from real runs.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from attrs import frozen

from ocfs2lab.formats.kmsg import ERROR_KINDS, EventKind
from ocfs2lab.observe.timeline import TimelineEvent
from ocfs2lab.spec.cluster import TimingSpec
from ocfs2lab.spec.stack import PcmkSpec

#: Kernel events about the victim that show a survivor noticed it was gone.
DETECTION_KINDS = frozenset(
    {
        EventKind.O2NET_IDLE,
        EventKind.O2NET_LOST,
        EventKind.O2NET_NO_CONNECTION,
        EventKind.O2HB_NODE_DOWN,
        EventKind.DLM_EVICTED,
        EventKind.RECOVERY_BEGIN,
    }
)
#: A node decided to fence itself, or did.
FENCE_KINDS = frozenset({EventKind.QUORUM_FENCE, EventKind.FENCE_RESTART, EventKind.FENCE_PANIC})
#: The survivors' steps, in the order the kernel takes them.
SURVIVOR_ORDER = (
    "connection_lost",
    "evicted",
    "recovery_begin",
    "recovery_end",
    "replay_begin",
    "replay_end",
)


@frozen
class RecoveryTimes:
    """The survivors' view of a fault, in seconds after the fault took effect.

    A field is ``None`` when no survivor logged that step.

    Attributes:
        detected: First sign on a survivor (o2net idle or lost, eviction, recovery begin).
        connection_lost: ``o2net: No longer connected to`` the victim.
        evicted: ``o2dlm has evicted node`` (heartbeat declared the victim dead).
        recovery_begin: ``Begin recovery ... for node`` the victim.
        recovery_end: ``End recovery`` on the recovery master, after it began.
        replay_begin: ``Begin replay journal (node victim, ...)``.
        replay_end: ``End replay journal (node victim, ...)``.
        recovery_master: The node that said it is the recovery master for the victim.
        replayed_by: The node that replayed the victim's journal.
        replayed_slot: The slot whose journal was replayed.
        fenced: Nodes that decided to fence themselves (or did), in order.
        in_order: The survivors' steps that were seen came in the kernel's order.
        dlm_errors: Per node, how many failed lock requests it logged after the fault
            (a node evicted while frozen that runs on logs them).
        kernel_errors: Kernel BUG, oops, WARNING, panic or hung-task lines after the fault.
        stack: The cluster stack (``o2cb`` or ``pcmk``). On pcmk, ``connection_lost`` is
            knet's link to the victim going down, ``evicted`` fs/dlm's ``remove member``,
            ``recovery_begin``/``recovery_end`` fs/dlm's ``dlm_recover`` and its ``done``
            line; there is no recovery master.
        membership: pcmk: corosync formed a membership without the victim.
        fence_requested: pcmk: a survivor's dlm_controld asked for the victim's fence.
        fence_done: pcmk: the fence agent reported the victim fenced.
    """

    detected: float | None
    connection_lost: float | None
    evicted: float | None
    recovery_begin: float | None
    recovery_end: float | None
    replay_begin: float | None
    replay_end: float | None
    recovery_master: str | None
    replayed_by: str | None
    replayed_slot: int | None
    fenced: tuple[str, ...]
    in_order: bool
    dlm_errors: tuple[tuple[str, int], ...]
    kernel_errors: tuple[str, ...]
    stack: str = "o2cb"
    membership: float | None = None
    fence_requested: float | None = None
    fence_done: float | None = None

    @property
    def complete(self) -> bool:
        """Every survivor step was seen (eviction through journal replay)."""
        return None not in (self.evicted, self.recovery_end, self.replay_end)


#: pcmk: events about the victim that show a survivor noticed it was gone.
PCMK_DETECTION_KINDS = frozenset(
    {
        EventKind.COROSYNC_LINK_DOWN,
        EventKind.COROSYNC_MEMBERSHIP,
        EventKind.FSDLM_CONNECTION_CLOSED,
        EventKind.FSDLM_MEMBER_REMOVED,
        EventKind.OCFS2_NODE_DOWN,
        EventKind.FENCE_REQUEST,
    }
)
#: pcmk: the survivors' steps, in the order the stack takes them (membership, fencing, the
#: DLM's recovery, the journal replay). The fence request is not among them: dlm_controld
#: asks for the fence the moment corosync tells it of the new membership, and the daemons'
#: lines reach the kernel log through the journal, a few hundred milliseconds apart.
PCMK_SURVIVOR_ORDER = (
    "membership",
    "fence_done",
    "recovery_begin",
    "recovery_end",
    "replay_begin",
    "replay_end",
)
#: Per stack, what a survivor logs once it evicted the victim, ended the DLM's recovery and
#: replayed the victim's journal (``True``: the event names the victim).
RECOVERY_STEPS: dict[str, tuple[tuple[EventKind, bool], ...]] = {
    "o2cb": (
        (EventKind.DLM_EVICTED, True),
        (EventKind.RECOVERY_END, False),
        (EventKind.JOURNAL_REPLAY_END, True),
    ),
    "pcmk": (
        (EventKind.FSDLM_MEMBER_REMOVED, True),
        (EventKind.FSDLM_RECOVER_DONE, False),
        (EventKind.JOURNAL_REPLAY_END, True),
    ),
}


def names_node(event: TimelineEvent, number: int) -> bool:
    """Whether ``event`` is about node ``number`` (its node, or one of the nodes a
    membership change lists)."""
    if event.about == number:
        return True
    members = event.kernel.members if event.kernel is not None else None
    return event.kind is EventKind.COROSYNC_MEMBERSHIP and number in (members or ())


def _first(
    events: Sequence[TimelineEvent],
    kinds: Iterable[EventKind],
    *,
    nodes: Iterable[str],
    about: int | None = None,
    after: float,
) -> TimelineEvent | None:
    wanted = set(kinds)
    names = set(nodes)
    for e in events:
        if (
            e.time >= after
            and e.kind in wanted
            and e.node in names
            and (about is None or names_node(e, about))
        ):
            return e
    return None


def analyze_recovery(
    events: Sequence[TimelineEvent],
    *,
    fault_time: float,
    victim: int,
    survivors: Iterable[str],
    names: Mapping[int, str] | None = None,
    stack: str = "o2cb",
) -> RecoveryTimes:
    """Read the survivors' recovery of ``victim`` from timeline events.

    Args:
        events: Timeline events in time order (others are ignored).
        fault_time: Host time the fault took effect.
        victim: The victim's node number.
        survivors: Names of the nodes that kept running.
        names: Node number to name (to name a recovery master that another node reports).
        stack: The cluster stack, ``o2cb`` or ``pcmk`` (whose events differ).

    Returns:
        The times and facts found.
    """
    if stack == "pcmk":
        return _analyze_pcmk(events, fault_time=fault_time, victim=victim, survivors=survivors)
    alive = list(survivors)
    after = fault_time

    detected = _first(events, DETECTION_KINDS, nodes=alive, about=victim, after=after)
    lost = _first(events, {EventKind.O2NET_LOST}, nodes=alive, about=victim, after=after)
    evicted = _first(events, {EventKind.DLM_EVICTED}, nodes=alive, about=victim, after=after)
    begin = _first(events, {EventKind.RECOVERY_BEGIN}, nodes=alive, about=victim, after=after)
    master_event = _first(
        events, {EventKind.RECOVERY_MASTER}, nodes=alive, about=victim, after=after
    )
    master: str | None = master_event.node if master_event else None
    if master is None:
        other = _first(
            events, {EventKind.RECOVERY_NOT_MASTER}, nodes=alive, about=victim, after=after
        )
        if other is not None and other.kernel is not None and other.kernel.master is not None:
            master = (names or {}).get(other.kernel.master, str(other.kernel.master))
    end = None
    if begin is not None:
        end_nodes = [master] if master in alive else alive
        end = _first(events, {EventKind.RECOVERY_END}, nodes=end_nodes, after=begin.time)
    replay_begin = _first(
        events, {EventKind.JOURNAL_REPLAY_BEGIN}, nodes=alive, about=victim, after=after
    )
    replay_end = _first(
        events, {EventKind.JOURNAL_REPLAY_END}, nodes=alive, about=victim, after=after
    )
    return _times(
        events,
        fault_time,
        order=[lost, evicted, begin, end, replay_begin, replay_end],
        detected=detected,
        connection_lost=lost,
        evicted=evicted,
        recovery_begin=begin,
        recovery_end=end,
        replay_begin=replay_begin,
        replay_end=replay_end,
        recovery_master=master,
    )


def _times(
    events: Sequence[TimelineEvent],
    fault_time: float,
    *,
    order: Sequence[TimelineEvent | None],
    detected: TimelineEvent | None,
    connection_lost: TimelineEvent | None,
    evicted: TimelineEvent | None,
    recovery_begin: TimelineEvent | None,
    recovery_end: TimelineEvent | None,
    replay_begin: TimelineEvent | None,
    replay_end: TimelineEvent | None,
    recovery_master: str | None,
    stack: str = "o2cb",
    membership: TimelineEvent | None = None,
    fence_requested: TimelineEvent | None = None,
    fence_done: TimelineEvent | None = None,
) -> RecoveryTimes:
    """The times of the steps found (seconds after the fault), and what followed."""

    def rel(e: TimelineEvent | None) -> float | None:
        return None if e is None else e.time - fault_time

    fenced, errors, dlm = _aftermath(events, fault_time)
    seen = [e.time for e in order if e is not None]
    return RecoveryTimes(
        detected=rel(detected),
        connection_lost=rel(connection_lost),
        evicted=rel(evicted),
        recovery_begin=rel(recovery_begin),
        recovery_end=rel(recovery_end),
        replay_begin=rel(replay_begin),
        replay_end=rel(replay_end),
        recovery_master=recovery_master,
        replayed_by=replay_end.node if replay_end else None,
        replayed_slot=(
            replay_end.kernel.slot if replay_end is not None and replay_end.kernel else None
        ),
        fenced=fenced,
        in_order=seen == sorted(seen),
        dlm_errors=dlm,
        kernel_errors=errors,
        stack=stack,
        membership=rel(membership),
        fence_requested=rel(fence_requested),
        fence_done=rel(fence_done),
    )


def _aftermath(
    events: Sequence[TimelineEvent], after: float
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, int], ...]]:
    """Nodes that fenced themselves, kernel errors, failed lock requests per node."""
    fenced: list[str] = []
    for e in events:
        if e.time >= after and e.kind in FENCE_KINDS and e.node and e.node not in fenced:
            fenced.append(e.node)
    errors = tuple(
        f"{e.node}: {e.kernel.raw if e.kernel else e.kind}"
        for e in events
        if e.time >= after and e.kind in ERROR_KINDS
    )
    dlm: dict[str, int] = {}
    for e in events:
        if e.time >= after and e.kind is EventKind.DLM_ERROR and e.node:
            dlm[e.node] = dlm.get(e.node, 0) + 1
    return tuple(fenced), errors, tuple(sorted(dlm.items()))


def _analyze_pcmk(
    events: Sequence[TimelineEvent],
    *,
    fault_time: float,
    victim: int,
    survivors: Iterable[str],
) -> RecoveryTimes:
    alive = list(survivors)
    after = fault_time

    def first(kinds: Iterable[EventKind], about: int | None, since: float = after) -> Any:
        return _first(events, kinds, nodes=alive, about=about, after=since)

    token = first({EventKind.COROSYNC_TOKEN_LOST}, None)
    about = first(PCMK_DETECTION_KINDS, victim)
    detected = min((e for e in (token, about) if e is not None), key=lambda e: e.time, default=None)
    lost = first({EventKind.COROSYNC_LINK_DOWN}, victim)
    membership = next(
        (
            e
            for e in events
            if e.time >= after
            and e.kind is EventKind.COROSYNC_MEMBERSHIP
            and e.node in alive
            and e.kernel is not None
            and e.kernel.detail == "left"
            and victim in (e.kernel.members or ())
        ),
        None,
    )
    requested = first({EventKind.FENCE_REQUEST}, victim)
    done = first({EventKind.FENCE_DONE}, victim)
    begin = first({EventKind.FSDLM_RECOVER_BEGIN}, None, done.time if done else after)
    removed = first({EventKind.FSDLM_MEMBER_REMOVED}, victim)
    end = first({EventKind.FSDLM_RECOVER_DONE}, None, begin.time) if begin else None
    replay_begin = first({EventKind.JOURNAL_REPLAY_BEGIN}, victim)
    replay_end = first({EventKind.JOURNAL_REPLAY_END}, victim)
    return _times(
        events,
        fault_time,
        order=[membership, done, begin, end, replay_begin, replay_end],
        detected=detected,
        connection_lost=lost,
        evicted=removed,
        recovery_begin=begin,
        recovery_end=end,
        replay_begin=replay_begin,
        replay_end=replay_end,
        recovery_master=None,
        stack="pcmk",
        membership=membership,
        fence_requested=requested,
        fence_done=done,
    )


def pcmk_theory(pcmk: PcmkSpec) -> dict[str, float]:
    """What corosync's timers predict, in seconds after a node's death.

    * ``token``: the others stop waiting for the token.
    * ``detect``: token and consensus: a membership without the node is formed.
    * ``evict_latest``: detection, plus room for fencing and dlm_controld's reaction
      (30 s under emulation).
    """
    token = pcmk.token_ms / 1000
    detect = pcmk.detect_after_s
    return {"token": token, "detect": detect, "evict_latest": detect + 30.0, "idle": 0.0}


def theory(timing: TimingSpec) -> dict[str, float]:
    """What the kernel's timers predict, in seconds after a node's last heartbeat write.

    * ``idle``: o2net declares a silent connection lost after the idle timeout.
    * ``dead``: o2hb declares a node dead after ``dead_threshold`` missed 2 s heartbeats.
    * ``detect``: the earlier of the two.
    * ``evict_latest``: death, plus one heartbeat interval (the last write may have landed
      just before the fault), plus the DLM recovery thread's 5 s poll.
    """
    idle = timing.idle_timeout_ms / 1000
    dead = timing.dead_after_s
    interval = TimingSpec.HEARTBEAT_INTERVAL_MS / 1000
    return {
        "idle": idle,
        "dead": dead,
        "detect": min(idle, dead),
        "evict_latest": dead + interval + 5.0,
    }


def spread(values: Iterable[float | None]) -> dict[str, Any]:
    """Median, minimum, maximum, standard deviation and count of the values given.

    ``None`` values (a step not seen in a run) are counted in ``missing``.
    """
    items = list(values)
    seen = [v for v in items if v is not None]
    return {
        "n": len(seen),
        "missing": len(items) - len(seen),
        "median": statistics.median(seen) if seen else None,
        "min": min(seen) if seen else None,
        "max": max(seen) if seen else None,
        "stdev": statistics.stdev(seen) if len(seen) > 1 else (0.0 if seen else None),
    }
